"""The slice search: its space obeys the Lab's rules, its greedy descent finds good slices under a
budget within its evaluation bound, and `matformer search` works end to end on tiny."""

from __future__ import annotations

import json

import pytest

from evals.results import load_results
from evals.slice_search import AgreementObjective, TaskObjective, ffn_text
from evals.tasks import resolve_tasks
from g3n_core import MatformerSlice, ModelCache, SliceError, Variant
from g3n_core.cli import main
from g3n_core.matformer.export import export_slice
from g3n_core.matformer.mini_ladder import half_preset, mini_presets
from g3n_core.matformer.presets import lab_presets
from g3n_core.matformer.search import Budget, Measured, Point, SliceSpace, State, pareto, parse_amount, preset_seeds, search
from g3n_core.matformer.slicing import check_slice
from g3n_core.sources import classify, read_config

TINY = Variant(towers=())
IMPORTANCE = [1.0] * 5 + [0.3] * 5 + [0.05] * 5  # tiny's early layers matter most in this made-up objective


def analytic(variant: Variant) -> Measured:
    """Score: minus the importance-weighted width lost (a skipped layer loses all of it)."""
    slc = variant.matformer or MatformerSlice()
    widths = State.of(slc, (512,) * 15).widths
    lost = sum(imp * (1.0 if i in slc.skip else 1 - widths[i] / 512) for i, imp in enumerate(IMPORTANCE))
    return Measured(score=-lost)


@pytest.fixture(scope="module")
def space():
    return SliceSpace(TINY)


def test_space_follows_the_lab_rules(space):
    assert space.allowed == (128, 256, 384, 512)  # tiny has no presets: the Matryoshka quarters
    assert space.blocks[0] == (0, 1, 2, 3, 4) and len(space.blocks) == 3  # one attention period per block
    text = read_config(classify("tiny")).text_config
    assert all(text.kv_sharing_modes[i] == "reuse" for run in space.skip_runs() for i in run)  # never a producer
    state = State(space.parent_widths)
    for _ in range(6):  # walk down: every move is a legal slice
        moves = space.moves(state)
        assert moves
        for _, _, new in moves:
            check_slice(text, new.to_slice())
        state = moves[-1][2]
    e4b = SliceSpace(Variant(model="e4b-shape", dtype="bfloat16", towers=()))
    assert e4b.allowed == (8192, 16384)  # the widths the Lab's presets use


def test_the_presets_that_fit_the_parent_seed_the_search():
    mini = SliceSpace(Variant(model="mini"))
    ladder = [p.key for p in mini_presets()]
    assert [s.preset for s in preset_seeds(mini)] == ladder[1:]  # mini's own ladder but its full model (the parent itself)
    assert half_preset().key in ladder and mini.allowed == (128, 256, 384, 512)  # the widths its ladder uses
    assert preset_seeds(SliceSpace(TINY)) == []  # no preset slices tiny's 15 layers
    e4b = preset_seeds(SliceSpace(Variant(model="e4b-shape", dtype="bfloat16", towers=())))
    assert [s.preset for s in e4b] == [p.key for p in lab_presets()][1:]


def test_greedy_descent_beats_the_uniform_slice_under_its_budget(space):
    half = MatformerSlice(ffn=(256,) * 15)
    budget = Budget(max_effective_params=space.size(half)[0])
    seen = []
    result = search(space, analytic, budget, max_evals=30, progress=lambda done, total, what: seen.append(done))
    assert result.evaluations <= 30 and max(seen) <= 30
    best = result.best
    assert best is not None and budget.admits(best)
    assert best.score > analytic(TINY.replace(matformer=half)).score  # cut where it costs least, not uniformly
    widths = State.of(best.slice, space.parent_widths).widths
    assert min(widths[:5]) >= max(w for i, w in enumerate(widths[10:], 10) if i not in best.slice.skip)
    assert result.points[0].origin == "parent" and result.path[0].startswith("start")


def test_the_search_stays_within_its_evaluation_bound_and_says_when_nothing_fits(space):
    result = search(space, analytic, Budget(max_effective_params=1), max_evals=4)
    assert result.evaluations == 4 and result.best is None
    with pytest.raises(SliceError, match="max_evals"):
        search(space, analytic, Budget(max_effective_params=1), max_evals=0)


def test_budget_and_pareto_front():
    def point(score, params, memory=0, speed=None):
        return Point(MatformerSlice(ffn=(params,)), "search", score, 0.0, {}, params, memory, speed)

    a, b, c = point(0.9, 100), point(0.8, 50), point(0.7, 80)  # c is beaten by b on both
    assert pareto([a, b, c]) == [a, b]
    budget = Budget(max_effective_params=60, min_tokens_per_s=5)
    assert not budget.admits(point(1, 50, speed=4)) and budget.admits(point(1, 50, speed=6))
    assert Budget(max_effective_params=60).distance(a) == 40
    assert parse_amount("1.9B") == 1.9e9 and parse_amount("4GiB") == 4 * 2**30 and parse_amount("300m") == 3e8
    with pytest.raises(SliceError):
        parse_amount("lots")
    assert ffn_text((8, 8, 16, 8)) == "8*2,16,8"


def test_objectives_see_only_the_dev_split():
    cache = ModelCache()
    task = TaskObjective("builtin_mc", cache, limit=None, speed=None)
    assert task.task.name == "builtin_mc:dev"
    test_docs = {d["query"] for d in resolve_tasks(["builtin_mc:test"])[0].docs()}
    assert not {d["query"] for d in task.task.docs()} & test_docs
    agreement = AgreementObjective(TINY, cache, limit=4, speed=None)
    assert agreement(TINY).score == 0.0 and agreement(TINY).tiebreak == 1.0  # the parent agrees with itself


def test_matformer_search_cli_on_tiny(tmp_path, capsys, single_thread):
    out = tmp_path / "search"
    code = main(["matformer", "search", "--model", "tiny", "--task", "agreement", "--budget-like", "ffn=256", "--max-evals", "6",
                 "--limit", "3", "--fields", "towers=text", "--no-speed", "--out", str(out)])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "best under the budget" in printed and "matformer slice --model tiny --ffn" in printed
    summary = json.loads((out / "search.json").read_text())
    assert summary["evaluations"] <= 6 and summary["best"] is not None
    assert summary["best"]["effective_params"] <= summary["limits"]["max_effective_params"]
    frame = load_results(out)
    assert {"agreement:dev", "measure:size"} <= set(frame["task"])
    assert (out / "charts" / "search.html").is_file()
    best = MatformerSlice.from_dict(summary["best"]["slice"])
    assert (export_slice("tiny", best, tmp_path / "found") / "config.json").is_file()  # exportable as found


def test_the_held_out_check_scores_found_and_preset_on_test(tmp_path, capsys, single_thread):
    from benchmarks.slice_search_check import main as check

    check(["--model", "tiny", "--task", "builtin_mc", "--preset", "ffn=256", "--fields", "towers=text", "--max-evals", "3", "--limit", "2", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    record = json.loads(next(tmp_path.glob("slice-search-check-*.json")).read_text())
    assert record["checkpoint"] == {"name": "tiny", "version": record["checkpoint"]["version"]}  # the weights' version is named
    assert {s["metric"] for s in record["test"].values()} == {"acc"} and record["test"]["preset"]["metrics"]["acc"]["n"] == 2
    assert record["paired"]["n"] == 2 and record["search"]["evaluations"] <= 3  # the preset is a seed: always evaluated
    assert record["found_at_least_preset"] == (record["test"]["found"]["score"] >= record["test"]["preset"]["score"])
    assert "paired on 2 test examples" in printed and "+-" in printed


def test_matformer_search_cli_on_a_task_and_bad_budgets(tmp_path, capsys, single_thread):
    out = tmp_path / "mc"
    assert main(["matformer", "search", "--model", "tiny", "--task", "builtin_mc", "--max-effective-params", "1.5M", "--max-evals", "3",
                 "--limit", "2", "--fields", "towers=text", "--no-speed", "--out", str(out)]) in (0, 1)  # fmt: skip
    assert "builtin_mc:dev" in set(load_results(out)["task"])
    assert main(["matformer", "search", "--model", "tiny", "--task", "builtin_mc", "--out", str(tmp_path / "x")]) == 2
    assert "give a budget" in capsys.readouterr().err
