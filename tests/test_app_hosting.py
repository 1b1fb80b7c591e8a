"""Hosting limits in the app: models over the cache budget refused before loading (panel, Compare), the results
folder under its quota (exports refused before writing, least recently used cleaned up), long chats answered."""

from __future__ import annotations

import io
import os
import re
import time
import zipfile

import gradio as gr
import pytest
from app_fixtures import tiny_bench

from app import chat_handlers as h
from app import compare as c
from app import matformer_tab as m
from app.export_zip import export_files, zip_chunks
from app.model_panel import NO_SLICE, load_from_panel, panel_estimate
from g3n_core.variant import knobs
from app.results_quota import ResultsQuota, parse_size
from g3n_core import DiskQuotaError, MatformerSlice, ModelCache, Variant, load_model
from g3n_core.footprint import estimate_bytes
from g3n_core.matformer.export import export_bytes

SLICE_A = MatformerSlice(ffn=(256,) * 14, skip=(7,))
SLICE_B = MatformerSlice(ffn=(128,) * 14, skip=(7,))
SLICE_C = MatformerSlice(ffn=(192,) * 14, skip=(7,))
BUDGET = 4 * 2**30  # e4b-shape in float32 (~29 GiB) can never fit; tiny (~38 MiB) always does


@pytest.fixture
def bench(tiny, tmp_path):
    loads: list[Variant] = []

    def loader(variant, progress=None):
        loads.append(variant)
        return tiny if variant == tiny.variant else load_model(variant, progress)

    bench = tiny_bench(tiny, tmp_path / "results", results_quota="120mb")
    bench.cache = ModelCache(budget_bytes=BUDGET, loader=loader)
    bench.loads = loads
    return bench


# -- models within the cache budget -----------------------------------------------------------------


NAMES = [f.name for f in knobs()]


def _panel(model: str, dtype: str, **more) -> dict:
    """The model panel's values by field name (every other knob at the Variant's default)."""
    return {f.name: getattr(Variant(), f.name) for f in knobs()} | {"model": model, "dtype": dtype, "matformer": NO_SLICE} | more


def _estimate(bench, values: dict):
    return panel_estimate(bench, NAMES, *[values[name] for name in NAMES])


def test_the_panel_shows_the_estimate_and_disables_load_for_a_model_too_large(bench):
    text, load = _estimate(bench, _panel("e4b-shape", "float32"))
    assert "Too large for this server" in text and "29.13 GiB" in text and "4.00 GiB" in text and "would fit" in text
    assert load.interactive is False
    text, load = _estimate(bench, _panel("tiny", "float32"))
    assert "37.8 MiB" in text and load.interactive is True
    text, load = _estimate(bench, _panel("tiny", "float32", sparsity="0.5@99"))  # a bad value: said, Load off
    assert "Variant.sparsity" in text and load.interactive is False


def test_load_refuses_a_model_too_large_before_loading(bench):
    with pytest.warns(UserWarning, match="needs about 29.13 GiB in memory, over the model cache&#x27;s budget of 4.00 GiB"):
        note = load_from_panel(bench, _panel("e4b-shape", "float32"), progress=None)[-1]
    assert "over the model cache&#x27;s budget" in note  # said beside Load; the session keeps its model
    assert bench.loads == []


def test_compare_shows_estimates_and_refuses_a_run_with_a_variant_too_large(bench):
    known = {"small": Variant(), "huge": Variant(model="e4b-shape")}
    text, run = c.picked_estimates(bench, known, ["small", "huge"])
    assert "`small`: about 37.8 MiB" in text and "⛔ `huge`" in text and run.interactive is False
    assert c.picked_estimates(bench, known, ["small"])[1].interactive is True
    with pytest.raises(gr.Error, match="e4b-shape sdpa fp32 needs about 29.13 GiB"):
        c.run_comparison(bench, known, ["small", "huge"], ["builtin_mc"], [], 1, progress=None)
    assert not bench.results_root.exists() or not any(bench.results_root.iterdir())  # nothing written, nothing loaded
    assert bench.loads == []


# -- disk within the results quota ------------------------------------------------------------------


def test_sizes_parse_like_max_file_size():
    assert parse_size("2gb") == 2 * 2**30 and parse_size("500 MB") == 500 * 2**20 and parse_size("1.5kb") == 1536 and parse_size(7) == 7
    with pytest.raises(ValueError, match="cannot read"):
        parse_size("lots")


def test_an_export_over_the_quota_is_refused_before_writing(bench):
    bench.quota = ResultsQuota(bench.results_root, 20 * 2**20)  # tiny's slice needs ~35 MB
    quota_said = r"the export tiny-.* needs about 3\d\.\d MiB on disk, over the results folder&#x27;s quota of 20\.0 MiB; choose"
    with pytest.warns(UserWarning, match=quota_said):  # a toast, and the same line in the tab's note
        note = m.export_checkpoint(bench, "tiny", SLICE_A, progress=None)
    assert re.search(quota_said, note)
    assert not bench.exports_dir.exists() or not any(bench.exports_dir.iterdir())


def _room_for_two(bench) -> None:
    """A quota that holds any two of the three slices' exports but not all three."""
    sizes = [export_bytes("tiny", s) for s in (SLICE_A, SLICE_B, SLICE_C)]
    assert abs(sizes[0] - 35e6) < 3e6  # the estimate is the export's size (tested against a real one in test_footprint)
    bench.quota = ResultsQuota(bench.results_root, sum(sizes) - 2**20)


def test_exports_clean_up_least_recently_used_and_keep_the_folder_under_the_quota(bench):
    _room_for_two(bench)
    first = m.export_checkpoint(bench, "tiny", SLICE_A, progress=None)
    second = m.export_checkpoint(bench, "tiny", SLICE_B, progress=None)
    a, b = (bench.exports_dir / m.export_name("tiny", s) for s in (SLICE_A, SLICE_B))
    assert a.is_dir() and b.is_dir() and str(a) in first and str(b) in second
    old = time.time() - 100
    os.utime(b, (old, old))  # b is now the least recently used
    m.export_checkpoint(bench, "tiny", SLICE_C, progress=None)  # all three do not fit: one must go
    assert a.is_dir() and not b.exists() and (bench.exports_dir / m.export_name("tiny", SLICE_C)).is_dir()
    assert bench.quota.used_bytes() <= bench.quota.limit_bytes


def test_an_export_a_loaded_model_comes_from_is_kept(bench):
    _room_for_two(bench)
    m.export_checkpoint(bench, "tiny", SLICE_A, progress=None)
    a = bench.exports_dir / m.export_name("tiny", SLICE_A)
    bench.cache.get(Variant(model=str(a), towers=()))  # in use now
    old = time.time() - 100
    os.utime(a, (old, old))
    m.export_checkpoint(bench, "tiny", SLICE_B, progress=None)
    m.export_checkpoint(bench, "tiny", SLICE_C, progress=None)
    assert a.is_dir()  # oldest, but loaded: the others go first
    assert bench.quota.used_bytes() <= bench.quota.limit_bytes


def test_quota_clean_up_takes_the_oldest_runs_and_downloads_but_not_kept_ones(tmp_path):
    root = tmp_path / "results"
    runs = []
    for i in range(4):  # four 1 MB runs, oldest first
        run = root / f"2026010{i}-2-variants"
        run.mkdir(parents=True)
        (run / "results.jsonl").write_bytes(b"x" * 2**20)
        os.utime(run / "results.jsonl", (1000 + i, 1000 + i))
        os.utime(run, (1000 + i, 1000 + i))
        runs.append(run)
    (root / "downloads" / runs[0].name).mkdir(parents=True)
    (root / "downloads" / runs[0].name / "results.csv").write_bytes(b"y" * 2**20)
    os.utime(root / "downloads" / runs[0].name, (999, 999))
    quota = ResultsQuota(root, int(3.5 * 2**20))
    deleted = quota.make_room(0, keep=[runs[0]])
    assert deleted == [root / "downloads" / runs[0].name, runs[1]]  # the oldest two that may go
    assert runs[0].is_dir() and quota.used_bytes() <= quota.limit_bytes
    with pytest.raises(DiskQuotaError, match="over the results folder's quota of 3.5 MiB, 3.0 MiB of it held"):
        quota.make_room(4 * 2**20, keep=runs)  # cannot fit even with everything else gone: refused, nothing deleted
    assert all(r.is_dir() for r in (runs[0], runs[2], runs[3]))


def test_the_export_zip_is_streamed_in_chunks_and_complete(bench):
    m.export_checkpoint(bench, "tiny", SLICE_A, progress=None)
    folder = bench.exports_dir / m.export_name("tiny", SLICE_A)
    chunks = list(zip_chunks(export_files(folder), chunk_bytes=2**20))
    assert max(len(chunk) for chunk in chunks) <= 2**20 + 2**16  # a chunk at a time, never the whole zip
    with zipfile.ZipFile(io.BytesIO(b"".join(chunks))) as zipped:
        assert zipped.testzip() is None
        assert zipped.read("config.json") == (folder / "config.json").read_bytes()


# -- long sessions ----------------------------------------------------------------------------------


def test_a_hundred_turn_api_session_keeps_answering(bench):
    history: h.History = []
    for i in range(100):
        history += [h.user_message(f"turn {i}: the colour of the sky at dusk over the sea, in some detail, please"),
                    {"role": "assistant", "content": f"answer {i}: it is orange and pink and then deep blue over the water"}]
    *_, (text, conversation) = h.api_chat(bench, {"text": "and now?", "files": []}, history, bench.default_variant, max_new_tokens=3)
    assert isinstance(text, str) and conversation[-3]["content"] == ["and now?"]
    stats = conversation[-1]
    assert h.is_stats(stats) and "oldest turns were left out" in stats["content"]
    assert estimate_bytes(bench.default_variant) <= BUDGET
