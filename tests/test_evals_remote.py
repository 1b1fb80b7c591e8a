"""Remote variants: an OpenAI-compatible endpoint compared beside local variants (against the project's own server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from app_fixtures import serving
from fastapi import FastAPI

from evals.cli import read_variants
from evals.results import load_results, read_samples
from evals.runner import run
from evals.tasks import all_tasks
from g3n_core import ModelCache, RemoteVariant, Variant, VariantError, load_model, parse_variant_spec

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("single_thread")


def _predictions(folder, variant, task) -> list:
    return [s["prediction"] if "prediction" in s else (s["pred"], s["pred_norm"]) for s in read_samples(folder, variant.to_json(), task)]


def test_cli_run_gives_identical_answers_and_marks_what_the_remote_cannot_measure(tiny_server, tmp_path):
    remote_spec = f"openai:{tiny_server['url']} model=tiny"
    # The whole suite: on tiny's random weights some answers hold byte-fallback runs that are not valid UTF-8
    # (item 85), which both sides must read as the tokenizer does (tests/test_detokenize.py).
    args = ["--variants", "tiny", remote_spec, "--tasks", "builtin_short_answer", "--measure", "latency,memory",
            "--out", str(tmp_path), "--threads", "1", "--repeats", "2", "--new-tokens", "6", "--prompt-tokens", "32"]  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "evals", "run", *args], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    local, remote = Variant(), parse_variant_spec(remote_spec)
    answers = _predictions(tmp_path, local, "builtin_short_answer")
    suite_size = len(all_tasks()["builtin_short_answer"].docs(None))
    assert len(answers) == suite_size and answers == _predictions(tmp_path, remote, "builtin_short_answer")
    assert any("\ufffd" in answer for answer in answers)  # the invalid byte runs are among them

    frame = load_results(tmp_path).set_index(["variant", "task", "metric"])
    for metric in ("exact_match", "f1"):
        assert frame.loc[(local.name, "builtin_short_answer", metric), "value"] == frame.loc[(remote.name, "builtin_short_answer", metric), "value"]
    for metric in ("peak_memory_bytes", "weight_bytes_loaded", "kv_cache_bytes"):
        assert frame.loc[(remote.name, "measure:memory", metric), "status"] == "unsupported"
    assert frame.loc[(remote.name, "measure:latency", "prefill_tokens_per_s_median"), "status"] == "unsupported"
    for metric in ("ttft_s_median", "decode_tokens_per_s_median"):
        row = frame.loc[(remote.name, "measure:latency", metric)]
        assert row["status"] == "ok" and row["value"] > 0 and "counted by usage" in row["note"]
    assert frame.loc[(remote.name, "measure:latency", "ttft_s_median"), "hardware"].startswith("remote endpoint")
    assert "unsupported" in done.stdout  # the printed comparison table says so


def test_remote_multiple_choice_and_media_tasks_match_local(tiny_server, tiny, tmp_path):
    remote = parse_variant_spec(f"openai:{tiny_server['url']} model=tiny")
    cache = ModelCache(loader=lambda variant, progress=None: tiny if variant == tiny.variant else load_model(variant, progress))
    tasks = ["builtin_mc", "builtin_image_qa", "builtin_speech_asr"]
    frame = run([tiny.variant, remote], tasks, tmp_path, limit=4, cache=cache)
    assert (frame["status"] == "ok").all()
    for task in tasks:
        assert _predictions(tmp_path, tiny.variant, task) == _predictions(tmp_path, remote, task), task
    local_lls = [ll for s in read_samples(tmp_path, tiny.variant.to_json(), "builtin_mc") for ll in s["loglikelihoods"]]
    remote_lls = [ll for s in read_samples(tmp_path, remote.to_json(), "builtin_mc") for ll in s["loglikelihoods"]]
    assert local_lls == pytest.approx(remote_lls, abs=1e-3)


@pytest.fixture()
def chat_only_endpoint():
    """An endpoint with no /v1/completions (as chat-only servers): log-likelihood tasks cannot run on it."""
    with serving(FastAPI()) as url:
        yield f"{url}/v1"


def test_endpoint_without_prompt_logprobs_is_marked_unsupported(chat_only_endpoint, tmp_path):
    remote = parse_variant_spec(f"openai:{chat_only_endpoint} model=anything")
    frame = run([remote], ["builtin_mc"], tmp_path, limit=2)
    assert set(frame["status"]) == {"unsupported"} and set(frame["metric"]) == {"acc", "acc_norm"}
    assert "does not score prompts" in frame["note"].iloc[0]
    again = run([remote], ["builtin_mc"], tmp_path, limit=2)  # a property of the endpoint: not retried
    assert len(again) == 2


def test_remote_specs_json_and_keys(tmp_path, monkeypatch):
    remote = parse_variant_spec("openai:http://127.0.0.1:9/v1/ model=gemma-3n key_env=G3N_REMOTE_KEY towers=vision")
    assert (remote.base_url, remote.model, remote.towers, remote.name) == ("http://127.0.0.1:9/v1", "gemma-3n", ("vision",), "gemma-3n @127.0.0.1:9 +vision")
    path = tmp_path / "variants.jsonl"
    path.write_text("\n".join(json.dumps(v.to_dict()) for v in (Variant(attn="eager"), remote)))
    assert read_variants([str(path)]) == [Variant(attn="eager"), remote]
    assert "G3N_REMOTE_KEY" not in remote.to_json() or "s3cret" not in remote.to_json()
    with pytest.raises(VariantError, match=r"\$G3N_REMOTE_KEY is not set"):
        remote.api_key()
    monkeypatch.setenv("G3N_REMOTE_KEY", "s3cret")
    assert remote.api_key() == "s3cret" and "s3cret" not in remote.to_json()
    for spec, field in (("openai:ftp://host/v1 model=m", "base_url"), ("openai:http://u:p@host/v1 model=m", "base_url"),
                        ("openai:http://host/v1", "model"), ("openai:http://host/v1 model=m flavour=x", "flavour")):  # fmt: skip
        with pytest.raises(VariantError) as caught:
            parse_variant_spec(spec)
        assert caught.value.field == field
    assert isinstance(RemoteVariant.from_dict(remote.to_dict()), RemoteVariant)


def test_compare_tab_takes_only_endpoints_the_operator_listed(tmp_path):
    from gradio import Error

    from app import compare as c
    from app.workbench import make_workbench
    from g3n_core import Variant

    spec = "openai:http://10.0.0.5:8000/v1 model=tiny"
    with pytest.raises(Error, match="--remote-endpoint"):
        c.add_spec(make_workbench(Variant(), results_root=tmp_path), {}, [], spec)
    listed = make_workbench(Variant(), results_root=tmp_path, remote_endpoints=("http://10.0.0.5:8000/v1",))
    known, dropdown, _ = c.add_spec(listed, {}, [], spec)
    assert list(known) == ["tiny @10.0.0.5:8000"] and dropdown.value == ["tiny @10.0.0.5:8000"]


def test_scores_from_servers_that_generate_a_token_or_do_not_echo():
    import httpx
    import openai
    from types import SimpleNamespace

    from evals.remote import RemoteEvalModel
    from g3n_core import UnsupportedError

    model = RemoteEvalModel(parse_variant_spec("openai:http://127.0.0.1:9/v1 model=m"))
    asked = []

    def create(**kwargs):  # vLLM refuses max_tokens=0 and echoes the prompt plus one generated token
        asked.append(kwargs["max_tokens"])
        if kwargs["max_tokens"] == 0:
            raise openai.BadRequestError("max_tokens must be at least 1", response=httpx.Response(400, request=httpx.Request("POST", "http://x")), body=None)
        return SimpleNamespace(choices=[SimpleNamespace(index=i, logprobs=SimpleNamespace(
            tokens=["Hi", " there", "!"], token_logprobs=[None, -1.5, -0.5], top_logprobs=[None, {" there": -1.5}, {"!": -0.5}], text_offset=[0, 2, len(p)]))
            for i, p in enumerate(kwargs["prompt"])])  # fmt: skip

    model.client = SimpleNamespace(completions=SimpleNamespace(create=create))
    (scores,) = model._score(["Hi there"]).values()
    assert asked == [0, 1] and scores.token_logprobs == [None, -1.5]  # the generated "!" is dropped

    echo_less = SimpleNamespace(token_logprobs=[-0.7], top_logprobs=[{"x": -0.7}], text_offset=[8])  # only the generated token
    with pytest.raises(UnsupportedError, match="do not start at the prompt's first token"):
        model._prompt_part("Hi there", echo_less)
