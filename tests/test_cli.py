"""`python -m g3n_core` end to end: generate (every modality, JSON), info (sizes without weights), errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from g3n_core.cli import main

ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}
JSON_KEYS = {"text", "prompt_tokens", "new_tokens", "ttft_s", "tokens_per_s"}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "g3n_core", *args], capture_output=True, text=True, env=ENV, timeout=300)


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    """The CLI in this process (same code path as `python -m g3n_core`, without the start-up cost)."""
    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def generate_json(capsys, *args: str) -> dict:
    status, out, err = run_main(capsys, "generate", "--model", "tiny", "--max-new-tokens", "4", "--json", *args)
    assert status == 0, err
    data = json.loads(out)
    assert JSON_KEYS <= data.keys()
    assert data["new_tokens"] >= 1 and data["prompt_tokens"] > 0 and data["ttft_s"] > 0
    return data


def test_generate_text_two_images_audio_and_video(capsys, media):
    text = generate_json(capsys, "Hello there")
    images = generate_json(capsys, "--image", str(media["image"]), "--image", str(media["image2"]), "Compare these")
    audio = generate_json(capsys, "--audio", str(media["audio"]), "Transcribe")
    video = generate_json(capsys, "--video", str(media["video"]), "--max-frames", "3", "What happens?")
    assert images["prompt_tokens"] > text["prompt_tokens"] + 2 * 16 - 1
    assert audio["prompt_tokens"] >= 188
    assert video["prompt_tokens"] >= 3 * 16
    assert images["variant"]["towers"] == ["vision"] and audio["variant"]["towers"] == ["audio"]
    assert text["random_weights"] is True


def test_generate_as_a_process_streams_text_and_a_stats_line():
    result = run_cli("generate", "--max-new-tokens", "3", "--system", "Be brief.", "Hi")
    assert result.returncode == 0
    assert "prompt tokens" in result.stderr and "random weights" in result.stderr


def test_bad_input_as_a_process_exits_nonzero_without_traceback():
    result = run_cli("generate", "--image", "/nonexistent/cat.png", "hi")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "Traceback" not in result.stderr and "no such image file" in result.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--image", "/nonexistent/cat.png", "hi"], "no such image file"),
        (["--audio", "IMAGE", "hi"], "unsupported audio format"),
        (["--attn", "magic", "hi"], "Variant.attn"),
        (["--sparsity", "0.5,0.5", "hi"], "Variant.sparsity"),
        (["--max-new-tokens", "0", "hi"], "max_new_tokens"),
        (["   "], "empty"),
        (["--audio", "AUDIO", "--audio", "AUDIO", "hi"], "2 --audio clips given: one turn carries at most one audio clip"),
        (["--video", "VIDEO", "--max-frames", "0", "hi"], "--max-frames 0: sample at least 1 frame"),
        (["bad \ud800 end"], "not valid Unicode"),
    ],
)
def test_bad_input_exits_nonzero_with_one_line(capsys, media, args, needle):
    files = {"IMAGE": str(media["image"]), "AUDIO": str(media["audio"]), "VIDEO": str(media["video"])}
    args = [files.get(a, a) for a in args]
    status, _, err = run_main(capsys, "generate", *args)
    assert status != 0
    assert needle in err
    assert len(err.strip().splitlines()) == 1


def test_invalid_utf8_in_an_argument_is_one_line_not_a_traceback():
    result = subprocess.run([sys.executable, "-m", "g3n_core", "generate", b"caf\xe9 au lait"], capture_output=True, env=ENV, timeout=300)
    err = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 2 and "Traceback" not in err and "not valid Unicode" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(("model", "published"), [("e2b-shape", 1.91e9), ("e4b-shape", 3.98e9)])
def test_info_matches_published_effective_params_without_allocating(model, published):
    result = subprocess.run(
        [sys.executable, "-c",
         # VmHWM is this process's own peak; getrusage's ru_maxrss would carry the forking pytest process's RSS across exec
         "import json, sys; from g3n_core.cli import main; main(sys.argv[1:]); "
         "hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM:')).split()[1]; "
         "print(json.dumps({'max_rss_mb': int(hwm) / 1024}))",
         "info", "--model", model, "--json"],
        capture_output=True, text=True, env=ENV, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    info_line, rss_line = result.stdout.strip().splitlines()
    info = json.loads(info_line)
    assert abs(info["effective_params"] - published) / published < 0.01
    assert info["random_weights"] is True
    # bfloat16 weights would need >10 GB; the meta-device count stays far below.
    assert info["total_bytes"] > 10e9
    assert json.loads(rss_line)["max_rss_mb"] < 2000


def test_info_on_tiny_prints_components(capsys):
    status, out, _ = run_main(capsys, "info", "--model", "tiny")
    assert status == 0
    for component in ("token_embeddings", "per_layer_embeddings", "text_decoder", "vision_tower", "audio_tower", "effective params"):
        assert component in out
