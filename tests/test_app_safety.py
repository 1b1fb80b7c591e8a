"""One allow-list for server paths: no file outside the model roots can be read, revealed, exported or served
through the model panel, the MatFormer tab, the Compare tab or the API behind them."""

from __future__ import annotations

import io
import shutil
import zipfile
from html import escape
from pathlib import Path

import gradio as gr
import httpx
import pytest
from app_fixtures import running_app, tiny_bench
from gradio_client import Client

from app import compare as c
from app import matformer_tab as m
from app.export_zip import export_files, zip_chunks, zip_link
from app.model_panel import NO_SLICE, load_from_panel, variant_from_panel
from app.safety import NOT_ALLOWED, allowed_model, allowed_path
from g3n_core import MatformerSlice, Variant
from g3n_core.builtin.checkpoint import ensure_tiny
from g3n_core.errors import ModelSourceError
from g3n_core.matformer.export import CHECKPOINT_FILES, export_slice

SLICE = MatformerSlice(ffn=(256,) * 14, skip=(7,))
SECRET = "the operator's secret"


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """An allowed root with a checkpoint (and a stray secret.txt), a checkpoint outside it, and a symlink out of the root."""
    base = tmp_path_factory.mktemp("paths")
    root, outside = base / "models", base / "outside"
    for folder in (root / "ok", outside / "ckpt"):
        shutil.copytree(ensure_tiny(), folder)
        (folder / "secret.txt").write_text(SECRET)
    (root / "link").symlink_to(outside / "ckpt", target_is_directory=True)
    (root / "not-a-checkpoint").mkdir()
    return {"root": root, "ok": root / "ok", "outside": outside / "ckpt", "link": root / "link"}


@pytest.fixture(scope="module")
def bench(tiny, folders, tmp_path_factory):
    return tiny_bench(tiny, tmp_path_factory.mktemp("results"), model_roots=(folders["root"],))


def refused_names(folders) -> list[str]:
    """Folders outside the roots: system ones, a nonexistent one, a real checkpoint, a symlink and a '..' escape."""
    return ["/etc", "/root/.ssh", "/no/such/folder", "../../etc", str(folders["outside"]), str(folders["link"]),
            f"{folders['ok']}/../../outside/ckpt", "~/.ssh"]


def test_every_folder_outside_the_roots_gets_one_identical_answer(folders, monkeypatch, tmp_path):
    for name in refused_names(folders):
        with pytest.raises(ModelSourceError) as caught:
            allowed_model(name, (folders["root"],))
        assert str(caught.value) == NOT_ALLOWED, name
    # an org/name-shaped folder in the working directory is a folder, not a hub id: refused the same way
    monkeypatch.chdir(tmp_path)
    (tmp_path / "org" / "name").mkdir(parents=True)
    with pytest.raises(ModelSourceError, match="not an allowed model folder"):
        allowed_model("org/name", (folders["root"],))


def test_built_ins_hub_ids_and_folders_in_the_roots_pass_by_their_real_path(folders):
    roots = (folders["root"],)
    assert [allowed_model(n, roots) for n in ("tiny", "e4b-shape", "google/gemma-3n-E2B-it")] == ["tiny", "e4b-shape", "google/gemma-3n-E2B-it"]
    assert allowed_model(str(folders["ok"]), roots) == str(folders["ok"].resolve())
    assert allowed_model(f"{folders['root']}/./ok/", roots) == str(folders["ok"].resolve())
    assert allowed_path(folders["link"], roots) is None and allowed_path(folders["ok"] / "config.json", roots) is not None


def test_model_panel_refuses_them_alike(bench, folders):
    for name in refused_names(folders):
        with pytest.raises(ModelSourceError, match="^not an allowed model folder"):
            variant_from_panel(bench, {"model": name})
        with pytest.warns(UserWarning, match="not an allowed model folder"):
            *unchanged, note = load_from_panel(bench, {"model": name})
        assert unchanged == [gr.skip()] * 4 and note.endswith(escape(NOT_ALLOWED)), name
    assert variant_from_panel(bench, {"model": str(folders["ok"]), "matformer": NO_SLICE}).model == str(folders["ok"].resolve())


def test_matformer_tab_reads_slices_and_exports_nothing_outside_the_roots(bench, folders):
    table = m.editor_rows("tiny", SLICE)
    calls = {  # each event function answers in the page: the text it shows
        "parent": lambda name: m.choose_parent(bench, name, "float32")[3],
        "show": lambda name: m.show_slice(bench, name, table, m.CUSTOM, "float32")[1],
        "compare": lambda name: m.send_to_compare(bench, name, SLICE, {}, [])[2],
        "export": lambda name: m.export_checkpoint(bench, name, SLICE, progress=None),
    }
    for what, call in calls.items():
        for name in refused_names(folders):
            with pytest.warns(UserWarning, match="not an allowed model folder"):
                shown = call(name)
            assert shown.endswith(escape(NOT_ALLOWED)), (what, name)
        with pytest.warns(UserWarning, match="not an allowed model folder"):
            assert m.choose_preset(bench, "/etc", "E2B") == gr.skip()
    assert not bench.exports_dir.exists() or not any(bench.exports_dir.iterdir())


def test_exports_copy_only_checkpoint_files(bench, folders):
    m.export_checkpoint(bench, str(folders["ok"]), SLICE, progress=None)
    folder = bench.exports_dir / m.export_name("ok", SLICE)
    written = {p.name for p in folder.iterdir()}
    assert "secret.txt" not in written and written <= CHECKPOINT_FILES | {"config.json", "model.safetensors", "matformer_slice.json", "README.md"}
    (folder / "secret.txt").write_text(SECRET)  # planted beside the export later: its zip still carries only the checkpoint
    with zipfile.ZipFile(io.BytesIO(b"".join(zip_chunks(export_files(folder))))) as zipped:
        assert "secret.txt" not in zipped.namelist() and set(zipped.namelist()) == written


def test_an_export_leaves_behind_files_that_link_out_of_the_parent(folders, tmp_path):
    parent = tmp_path / "parent"
    shutil.copytree(ensure_tiny(), parent)
    (parent / "generation_config.json").unlink()
    (parent / "generation_config.json").symlink_to(folders["outside"] / "secret.txt")
    out = export_slice(str(parent), SLICE, tmp_path / "out")
    assert not (out / "generation_config.json").exists() and (out / "tokenizer.json").is_file()


def test_compare_specs_and_earlier_runs_use_the_same_check(bench, folders, tmp_path):
    for name in refused_names(folders):
        with pytest.raises(gr.Error) as caught:
            c.add_spec(bench, {}, [], f"{name} attn=eager")
        assert caught.value.message == escape(NOT_ALLOWED), name
    known, dropdown, _ = c.add_spec(bench, {}, [], f"{folders['ok']} attn=eager")
    assert known[dropdown.value[0]].model == str(folders["ok"].resolve())
    bench.results_root.mkdir(parents=True, exist_ok=True)
    (bench.results_root / "escape").symlink_to(tmp_path, target_is_directory=True)
    for path in (str(tmp_path), str(bench.results_root / "escape"), f"{bench.results_root}/../.."):
        with pytest.raises(gr.Error, match="not one of this app's runs"):
            c.show_run(bench, path)


def PANEL_DEFAULTS(model: str) -> list:  # noqa: N802 - a table of values
    """The /load_model endpoint's inputs: one per Variant knob, in field order."""
    from g3n_core.variant import knobs

    values = {"model": model, "towers": [], "matformer": NO_SLICE}
    return [values.get(f.name, getattr(Variant(), f.name)) for f in knobs()]


def _data(rows) -> dict:
    return {"headers": m.EDITOR_COLUMNS, "data": rows.values.tolist(), "metadata": None}


def test_over_http_nothing_outside_the_roots_is_loaded_and_only_downloads_are_served(bench, folders):
    with running_app(bench) as url:
        client = Client(url, verbose=False)
        for name in ("/etc", "/no/such/folder", str(folders["outside"])):
            note = client.predict(*PANEL_DEFAULTS(name), api_name="/load_model")[-1]
            assert note.endswith(escape(NOT_ALLOWED)) and "folder without config.json" not in note
            assert client.predict(name, "float32", api_name="/matformer_parent")[3].endswith(escape(NOT_ALLOWED))
        # an allowed parent: slice and export it through the API, then try to fetch what the export must not serve
        client.predict(str(folders["ok"]), _data(m.editor_rows("tiny", SLICE)), m.CUSTOM, "float32", api_name="/matformer_show")
        note = client.predict(str(folders["ok"]), api_name="/matformer_export")
        export = bench.exports_dir / m.export_name("ok", SLICE)
        assert zip_link(export.name) in note
        (export / "secret.txt").write_text(SECRET)  # planted beside an exported checkpoint
        for path in (export / "secret.txt", export / "config.json", folders["ok"] / "secret.txt", folders["outside"] / "secret.txt", "/etc/passwd"):
            response = httpx.get(f"{url}gradio_api/file={path}", timeout=30)
            assert response.status_code == 403 and SECRET not in response.text, path
        offered = httpx.get(f"{url}{zip_link(export.name)}", timeout=30)  # the one thing offered: the zip, streamed
        assert offered.status_code == 200 and offered.headers["content-type"] == "application/zip"
        for name in ("..", "...%2F..%2Fetc", "%2Fetc", ".hidden", export.name + "%2F.."):
            assert httpx.get(f"{url}g3n/exports/{name}.zip", timeout=30).status_code == 404, name
        with zipfile.ZipFile(io.BytesIO(offered.content)) as zipped:
            assert "config.json" in zipped.namelist() and "secret.txt" not in zipped.namelist()
