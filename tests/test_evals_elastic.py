"""Evals over slices of one parent: the parent loads once (the run's log says so), and an elastic
slice scores exactly as the same slice exported and loaded on its own, on every built-in suite."""

from __future__ import annotations

import pytest

from evals.results import read_samples
from evals.runner import RUN_LOG, run
from g3n_core import MatformerSlice, ModelCache, Variant
from g3n_core.matformer.export import export_slice

SLICE = MatformerSlice(ffn=(256, 512, 128, 512, 384, 256, 256, 100, 256, 256), skip=(5, 6, 7, 8, 9))
LIMIT = 2  # examples per task: every built-in task runs, a few examples each


@pytest.fixture(scope="module")
def runs(tmp_path_factory, single_thread):
    """One cache for both runs: slices of tiny, then an elastic slice beside its export on every built-in suite."""
    root = tmp_path_factory.mktemp("evals-elastic")
    cache = ModelCache()
    slices = [Variant(), Variant(matformer=SLICE), Variant(matformer=MatformerSlice(ffn=(128,) * 15))]
    run(slices, ["builtin_mc"], root / "slices", limit=LIMIT, cache=cache)
    elastic, exported = slices[1], Variant(model=str(export_slice("tiny", SLICE, root / "export")))
    frame = run([elastic, exported], ["builtin"], root / "run", limit=LIMIT, cache=cache)
    return root, frame, elastic, exported


def test_slices_of_one_parent_load_it_once_and_the_log_shows_it(runs):
    root, frame, elastic, exported = runs
    lines = (root / "slices" / RUN_LOG).read_text().splitlines()
    assert len(lines) == 3, lines
    assert " loaded tiny sdpa fp32 in" in lines[0]  # the parent, once
    assert all(" elastic " in line and "from resident tiny sdpa fp32" in line for line in lines[1:])
    assert (frame["status"] != "error").all(), frame[frame["status"] == "error"]["note"].tolist()


def test_an_elastic_slice_scores_as_its_export_on_every_builtin_suite(runs):
    root, frame, elastic, exported = runs
    out = root / "run"
    tasks = sorted(set(frame["task"]))
    assert {"builtin_mc", "builtin_short_answer", "builtin_image_qa", "builtin_speech_asr", "builtin_speech_translation"} <= set(tasks)
    mine = frame[frame["variant_json"] == elastic.to_json()].set_index(["task", "metric"])["value"]
    theirs = frame[frame["variant_json"] == exported.to_json()].set_index(["task", "metric"])["value"]
    assert mine.sort_index().round(9).to_dict() == theirs.sort_index().round(9).to_dict()
    for task in tasks:
        a, b = read_samples(out, elastic.to_json(), task), read_samples(out, exported.to_json(), task)
        assert len(a) == len(b) == LIMIT
        for x, y in zip(a, b):
            if "loglikelihoods" in x:
                assert x["pred"] == y["pred"] and x["loglikelihoods"] == pytest.approx(y["loglikelihoods"], abs=1e-4)
            else:
                assert x.get("prediction") == y.get("prediction"), task
