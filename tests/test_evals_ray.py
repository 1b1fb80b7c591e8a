"""The Ray engine on a local two-worker cluster: the same table as the local engine, and a killed actor's unit retried."""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pytest
import ray  # requirements-scale.txt: CI installs it, so a missing Ray fails here instead of skipping

from evals.cli import build_parser
from evals.engines import LocalEngine, RayEngine, RaySettings, engine_from_env, make_engine
from evals.measure import MeasureSettings
from evals.results import ResultLog
from evals.runner import run
from evals.tasks import resolve_tasks
from evals.tasks.multiple_choice import MultipleChoiceTask
from g3n_core import Variant
from g3n_core.settings_args import settings_from_args

QUICK = MeasureSettings(prompt_tokens=16, new_tokens=3, warmup=1, repeats=1, kv_context=64, sparsity_prompt_tokens=16)
VARIANTS = [Variant(attn="eager"), Variant(towers=())]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A local Ray cluster with two CPUs (one per variant actor), its files under the test's temporary folder."""
    root = tmp_path_factory.mktemp("ray")
    # Ray's socket paths must stay under the OS limit (107 bytes): fall back to a short /tmp folder.
    temp = root if len(str(root)) < 45 else Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the actors run this module's dying task
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=str(temp))
    yield
    ray.shutdown()
    if temp != root:
        shutil.rmtree(temp, ignore_errors=True)


@dataclasses.dataclass
class DyingTask(MultipleChoiceTask):
    """builtin_mc, except that the first `deaths` attempts kill their worker process in the middle of the unit."""

    marker: str = ""
    deaths: int = 1

    def evaluate(self, model, limit=None, progress=None):
        attempts = Path(self.marker)
        attempts.write_text(attempts.read_text() + "x" if attempts.exists() else "x")
        if len(attempts.read_text()) <= self.deaths:
            os._exit(1)  # as an out-of-memory kill or a lost node would
        return super().evaluate(model, limit, progress)


def _dying(marker: Path, deaths: int, name: str) -> DyingTask:
    mc = resolve_tasks(["builtin_mc"])[0]
    fields = {f.name: getattr(mc, f.name) for f in dataclasses.fields(mc)}
    return DyingTask(**{**fields, "name": name}, marker=str(marker), deaths=deaths)


def _ok_counts(folder: Path) -> Counter:
    return Counter((r["unit_id"], r["metric"]) for r in ResultLog(folder).rows() if r["status"] != "error")


def test_ray_engine_gives_the_local_engines_table(cluster, tmp_path, single_thread):
    tasks, measures = ["builtin"], ["latency", "memory"]
    local = run(VARIANTS, tasks, tmp_path / "local", measures=measures, limit=2, measure_settings=QUICK, engine=LocalEngine())
    seen: list[float] = []
    remote = run(VARIANTS, tasks, tmp_path / "ray", measures=measures, limit=2, measure_settings=QUICK, engine=RayEngine(), progress=lambda f, m: seen.append(f))
    key = ["variant", "task", "metric"]
    assert list(local[key].itertuples(index=False)) == list(remote[key].itertuples(index=False))
    accuracy = ~local["task"].str.startswith("measure:")
    assert local.loc[accuracy, "value"].equals(remote.loc[accuracy, "value"]) and local.loc[accuracy, "status"].equals(remote.loc[accuracy, "status"])
    timings = remote[remote["metric"].isin(["decode_tokens_per_s_median", "ttft_s_median", "peak_memory_bytes"])]
    assert len(timings) == 6 and (timings["value"] > 0).all()
    assert remote["host"].notna().all() and remote["hardware"].str.contains("CPU").all()
    assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0)
    assert max(_ok_counts(tmp_path / "ray").values()) == 1
    before = (tmp_path / "ray" / "results.jsonl").read_text()
    run(VARIANTS, tasks, tmp_path / "ray", measures=measures, limit=2, measure_settings=QUICK, engine=RayEngine())  # resume: nothing left
    assert (tmp_path / "ray" / "results.jsonl").read_text() == before


def test_a_killed_actors_unit_runs_again_on_a_fresh_actor(cluster, tmp_path):
    once, always = _dying(tmp_path / "once", 1, "dies_once"), _dying(tmp_path / "always", 9, "always_dies")
    engine = RayEngine(RaySettings(max_retries=1))
    frame = run([Variant(towers=())], [once, "builtin_short_answer", always], tmp_path / "out", limit=2, engine=engine)
    assert (tmp_path / "once").read_text() == "xx" and (tmp_path / "always").read_text() == "xx"  # one retry each
    by = frame.set_index(["task", "metric"])
    assert by.loc[("dies_once", "acc"), "status"] == "ok" and by.loc[("builtin_short_answer", "f1"), "status"] == "ok"
    assert by.loc[("always_dies", "error"), "status"] == "error" and "died 2 times" in by.loc[("always_dies", "error"), "note"]
    assert max(_ok_counts(tmp_path / "out").values()) == 1  # nothing lost, nothing written twice

    reference = run([Variant(towers=())], ["builtin_mc"], tmp_path / "reference", limit=2, engine=LocalEngine())
    assert by.loc[("dies_once", "acc"), "value"] == reference.set_index("metric").loc["acc", "value"]


def test_engine_choice_from_flags_and_environment():
    args = build_parser().parse_args(["run", "--variants", "tiny", "--out", "x", "--engine", "ray", "--address", "auto", "--gpus-per-variant", "1", "--max-retries", "3"])
    settings = settings_from_args(RaySettings, args)
    assert settings == RaySettings(address="auto", gpus_per_variant=1.0, cpus_per_variant=1.0, max_retries=3)
    assert isinstance(make_engine(args.engine, settings), RayEngine)
    assert isinstance(engine_from_env(environ={}), LocalEngine)
    assert engine_from_env(environ={"G3N_RAY_ADDRESS": "ray://head:10001"}).settings.address == "ray://head:10001"


def test_compare_tab_submits_to_the_cluster_when_asked(cluster, tmp_path, tiny, monkeypatch):
    import json

    from app import compare as c
    from app_fixtures import tiny_bench

    monkeypatch.setenv("G3N_RAY_ADDRESS", "auto")  # the cluster this process is connected to
    bench = tiny_bench(tiny, tmp_path)
    known = {v.name: v for v in VARIANTS}
    c.run_comparison(bench, known, list(known), ["builtin_mc"], [], 1, repeats=1, progress=None)
    (run_dir,) = [p for p in tmp_path.iterdir() if (p / "run.json").exists()]
    assert json.loads((run_dir / "run.json").read_text())["engine"] == "ray"
    rows = ResultLog(run_dir).rows()
    assert {r["variant"] for r in rows} == set(known) and all(r["status"] == "ok" for r in rows)
