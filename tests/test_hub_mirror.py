"""The real hub path end to end, against a local hub mirror (tests/hub_mirror.py) serving the released layout.

huggingface_hub downloads google/gemma-3n-E2B-it (small weights) into a temporary HF_HOME in the
real cache layout; the workbench loads it, exports a slice, maps its per-layer table, releases the
pages its rewrites touched; then the same model loads offline from the cache; `python app.py
--model google/gemma-3n-E2B-it` starts on it. The hub runs only inside these tests' subprocesses
(HF_HUB_OFFLINE is unset there alone); the reachability probe is checked against the mirror and a
closed port in this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from app_fixtures import free_port
from hub_mirror import REPO, RELEASED_GENERATION_CONFIG, HubMirror, write_released_layout

from g3n_core import ModelSourceError, sources
from g3n_core.builtin.checkpoint import ensure_tiny

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """The mirror serving tiny in the released layout, and a fresh HF_HOME that its downloads go to."""
    root = tmp_path_factory.mktemp("hub")
    layout = write_released_layout(ensure_tiny(), root / "released")
    with HubMirror({REPO: layout}) as mirror:
        yield {"mirror": mirror, "layout": layout, "hf_home": root / "hf", "out": root}


def _env(hub: dict, offline: bool = False) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_ENDPOINT=hub["mirror"].url, HF_HOME=str(hub["hf_home"]), HF_HUB_DISABLE_PROGRESS_BARS="1", PYTHONPATH=str(ROOT))
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    return env


def _client(hub: dict, step: str, offline: bool = False) -> dict:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "hub_client.py"), step, str(hub["out"])],
        env=_env(hub, offline), capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def online(hub):
    return _client(hub, "online")


def test_the_mirror_serves_the_released_layout(hub):
    files = {p.name for p in hub["layout"].iterdir()}
    assert {"model.safetensors.index.json", "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json",
            "chat_template.jinja", "generation_config.json", "config.json"} <= files
    assert sum(name.endswith(".safetensors") for name in files) == 3 and "model.safetensors" not in files
    index = json.loads((hub["layout"] / "model.safetensors.index.json").read_text())["weight_map"]
    assert "model.language_model.layers.14.self_attn.k_proj.weight" in index  # a KV-shared layer's k/v, as released
    config = json.loads((hub["layout"] / "config.json").read_text())
    assert "rope_parameters" not in config["text_config"] and config["text_config"]["rope_local_base_freq"] == 10000.0
    assert json.loads((hub["layout"] / "generation_config.json").read_text()) == RELEASED_GENERATION_CONFIG


def test_download_lands_in_the_real_cache_layout(online, hub):
    assert online["reachable"] is True
    snapshots = hub["hf_home"] / "hub" / "models--google--gemma-3n-E2B-it" / "snapshots"
    commit = hub["mirror"].commit()
    assert Path(online["checkpoint"]) == snapshots / commit
    assert (snapshots.parent / "refs" / "main").read_text() == commit
    for name, real in online["weights"].items():
        assert (snapshots / commit / name).is_symlink(), name
        assert Path(real).parent == snapshots.parent / "blobs" and len(Path(real).name) == 64  # blobs/<sha256>, no suffix
    assert online["reply_tokens"] >= 1
    assert ("GET", f"/api/models/{REPO}/revision/main") in hub["mirror"].requests


def test_speed_features_and_page_release_work_on_the_hub_cache(online):
    assert "/blobs/" in online["ple_mapped_from"] and online["ple_logits_equal"]
    assert online["released"]["sparse_ffn"] > 0 and online["released"]["int8"] > 0  # blobs matched by inode, not by name


def test_matformer_export_of_a_hub_model(online):
    config = online["export_config"]
    assert online["export_layers"] == 10 and online["export_reply_tokens"] >= 1
    text = config["text_config"]
    assert text["num_hidden_layers"] == 10 and "rope_parameters" in text  # transformers 5's keys ...
    assert (text["rope_theta"], text["rope_local_base_freq"]) == (1_000_000.0, 10_000.0)  # ... and transformers 4's
    assert config["torch_dtype"] == config["dtype"] and text["torch_dtype"] == config["dtype"]


def test_totals_count_the_kv_weights_the_files_hold(online):
    assert online["info_total"] == online["file_params"]


def test_offline_reload_from_the_cache_asks_the_hub_nothing(online, hub):
    before = len(hub["mirror"].requests)
    offline = _client(hub, "offline", offline=True)
    assert offline["reachable"] is False and offline["checkpoint"] == online["checkpoint"] and offline["reply_tokens"] >= 1
    assert len(hub["mirror"].requests) == before


def test_app_starts_on_the_hub_model(online, hub):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--model", REPO, "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env={**_env(hub), "GRADIO_ANALYTICS_ENABLED": "False"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True).start()
    try:
        deadline = time.time() + 240
        while not any("Running on local URL" in line for line in lines):
            assert proc.poll() is None and time.time() < deadline, "app.py did not start:\n" + "".join(lines)
            time.sleep(0.5)
        log = "".join(lines)
        assert "model ready: gemma-3n-E2B-it" in log and "tiny" not in log.split("model ready:")[1].splitlines()[0]
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=30).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def hub_online(monkeypatch):
    """This process's huggingface_hub, online, for one test (restored after)."""
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(sources, "_REACHABLE", {})

    def point_at(url: str) -> None:
        monkeypatch.setattr(constants, "ENDPOINT", url)

    return point_at


def test_reachability_asks_huggingface_hub_s_endpoint(hub, hub_online):
    hub_online(hub["mirror"].url)
    assert sources.hub_reachable() is True
    assert ("HEAD", "/") in hub["mirror"].requests


def test_a_closed_port_fails_fast_saying_what_to_do(hub_online):
    closed = f"http://127.0.0.1:{free_port()}"
    hub_online(closed)
    start = time.perf_counter()
    assert sources.hub_reachable() is False
    with pytest.raises(ModelSourceError) as caught:
        sources.read_config(sources.classify("google/gemma-3n-E4B-it"))
    assert time.perf_counter() - start < 3
    message = str(caught.value)
    assert closed in message and "HF_ENDPOINT" in message and "HTTPS_PROXY" in message and "tiny" in message
