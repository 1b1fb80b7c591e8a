"""The runner: one tidy table for a variants x tasks x measurements matrix, durable rows, resume after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from evals.measure import MeasureSettings
from evals.results import ResultLog, load_results, read_samples
from evals.runner import run
from g3n_core import ModelCache, ModelSourceError, Variant, load_model

pytestmark = pytest.mark.usefixtures("single_thread")

QUICK = MeasureSettings(prompt_tokens=16, new_tokens=3, warmup=1, repeats=1, kv_context=64, sparsity_prompt_tokens=16)
TEXT = Variant(towers=())


def _ok_keys(folder: Path) -> Counter:
    return Counter((r["unit_id"], r["metric"]) for r in ResultLog(folder).rows() if r["status"] != "error")


def _values(folder: Path, tasks: tuple[str, ...]) -> dict:
    frame = load_results(folder)
    frame = frame[frame["task"].isin(tasks)]
    return {(r.variant, r.task, r.metric): r.value for r in frame.itertuples()}


def test_matrix_gives_one_tidy_table_and_resumes(tmp_path):
    variants = [Variant(attn="eager"), TEXT.replace(sparsity="off")]
    seen: list[float] = []
    frame = run(
        variants,
        ["builtin_mc", "builtin_short_answer", "builtin_image_qa"],
        tmp_path,
        measures=["memory", "latency", "sparsity"],
        limit=2,
        measure_settings=QUICK,
        progress=lambda fraction, message: seen.append(fraction),
    )
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0)
    assert (tmp_path / "results.csv").is_file() and (tmp_path / "results.json").is_file() and (tmp_path / "run.json").is_file()
    assert not frame.duplicated(["variant", "task", "metric"]).any()
    by = frame.set_index(["variant", "task", "metric"])
    eager, text = (v.name for v in variants)
    assert by.loc[(eager, "builtin_mc", "acc"), "n"] == 2 and by.loc[(eager, "builtin_mc", "acc"), "stderr"] >= 0
    assert by.loc[(text, "builtin_image_qa", "exact_match"), "status"] == "skipped"
    assert by.loc[(eager, "builtin_image_qa", "exact_match"), "status"] == "ok"
    assert by.loc[(text, "measure:sparsity", "layer_00"), "value"] == 0.0  # sparsity off
    assert by.loc[(eager, "measure:sparsity", "layer_00"), "value"] > 0.8
    assert by.loc[(eager, "measure:latency", "decode_tokens_per_s_median"), "value"] > 0
    assert by.loc[(text, "measure:memory", "kv_cache_bytes"), "value"] > 0
    assert Variant.from_json(by.loc[(text, "builtin_mc", "acc"), "variant_json"]) == variants[1]
    assert (frame["wall_s"] >= 0).all()

    lines = (tmp_path / "results.jsonl").read_text()
    again = run(variants, ["builtin_mc", "builtin_short_answer", "builtin_image_qa"], tmp_path, measures=["memory", "latency", "sparsity"], limit=2, measure_settings=QUICK)
    assert (tmp_path / "results.jsonl").read_text() == lines  # nothing re-ran, nothing appended
    assert again["value"].equals(frame["value"])

    # greedy, seeded generation: a second folder gives the same predictions
    run([variants[1]], ["builtin_short_answer"], tmp_path / "second", limit=2)
    first = read_samples(tmp_path, variants[1].to_json(), "builtin_short_answer")
    second = read_samples(tmp_path / "second", variants[1].to_json(), "builtin_short_answer")
    assert [s["prediction"] for s in first] == [s["prediction"] for s in second]


def test_failure_midway_loses_and_repeats_nothing(tmp_path, monkeypatch):
    tasks, measures = ["builtin_mc", "builtin_short_answer"], ["sparsity"]
    run([TEXT], tasks, tmp_path / "reference", measures=measures, limit=2, measure_settings=QUICK)

    original = ResultLog.append
    written = []

    def append_then_die(self, row):
        if len(written) == 5:  # in the middle of the sparsity unit's 15 rows
            raise KeyboardInterrupt
        written.append(row)
        original(self, row)

    monkeypatch.setattr(ResultLog, "append", append_then_die)
    with pytest.raises(KeyboardInterrupt):
        run([TEXT], tasks, tmp_path / "broken", measures=measures, limit=2, measure_settings=QUICK)
    monkeypatch.setattr(ResultLog, "append", original)
    assert len(ResultLog(tmp_path / "broken").rows()) == 5
    run([TEXT], tasks, tmp_path / "broken", measures=measures, limit=2, measure_settings=QUICK)

    assert max(_ok_keys(tmp_path / "broken").values()) == 1
    assert _ok_keys(tmp_path / "broken") == _ok_keys(tmp_path / "reference")
    assert _values(tmp_path / "broken", ("builtin_mc", "measure:sparsity")) == _values(tmp_path / "reference", ("builtin_mc", "measure:sparsity"))


def test_killed_process_resumes_without_repeats(tmp_path):
    out = tmp_path / "killed"
    args = ["--variants", "tiny towers=text", "--tasks", "builtin_mc", "builtin_short_answer", "--measure", "sparsity", "--limit", "12", "--out", str(out), "--threads", "1"]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    process = subprocess.Popen([sys.executable, "-m", "evals", "run", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = out / "results.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
        if log.exists() and log.read_text().count("\n") >= 17:  # sparsity (15 rows) and multiple choice (2) are done
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = ResultLog(out).rows()
    assert 17 <= len(before) < 19

    run([Variant(towers=())], ["builtin_mc", "builtin_short_answer"], out, measures=["sparsity"], limit=12)
    after = ResultLog(out).rows()
    assert after[: len(before)] == before  # finished rows kept as they were
    keys = _ok_keys(out)
    assert max(keys.values()) == 1 and len(keys) == 19
    assert {json.loads(r["variant_json"])["towers"] == [] for r in after} == {True}


def test_a_failing_variant_is_reported_and_retried(tmp_path):
    broken = Variant(attn="eager", towers=())

    def loader(variant, progress=None):
        if variant == broken:
            raise ModelSourceError("weights missing; put them back")
        return load_model(variant, progress)

    frame = run([broken, TEXT], ["builtin_mc"], tmp_path, limit=1, cache=ModelCache(loader=loader))
    errors = frame[frame["status"] == "error"]
    assert list(errors["variant"]) == [broken.name] and "weights missing" in errors["note"].iloc[0]
    assert (frame[frame["variant"] == TEXT.name]["status"] == "ok").all()

    frame = run([broken, TEXT], ["builtin_mc"], tmp_path, limit=1)  # fixed: the failed unit runs again
    assert (frame["status"] == "ok").all() and set(frame["variant"]) == {broken.name, TEXT.name}


def test_matformer_slice_variant_runs(tmp_path):
    pytest.importorskip("g3n_core.matformer.slicing", reason="MatFormer slicing is merged from the matformer branch")
    from g3n_core import parse_variant_spec

    sliced = parse_variant_spec("tiny towers=text matformer=ffn=256*15")
    frame = run([sliced], ["builtin_mc"], tmp_path, measures=["memory"], limit=2, measure_settings=QUICK)
    assert (frame["status"] == "ok").all()
    weights = frame[frame["metric"] == "weight_bytes_text_decoder"]["value"].iloc[0]
    full = run([TEXT], [], tmp_path, measures=["memory"], measure_settings=QUICK)
    assert weights < full[(full["variant"] == TEXT.name) & (full["metric"] == "weight_bytes_text_decoder")]["value"].iloc[0]
