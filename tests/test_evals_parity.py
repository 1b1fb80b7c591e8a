"""Parity with lm-evaluation-harness: the project's runner and lm-eval's stock HF model class give the
same per-example choices on the built-in multiple-choice suite, run on the same checkpoint: tiny
(random weights) and mini (trained, so its choices mean something)."""

from __future__ import annotations

import lm_eval
import numpy as np
import pytest
import torch
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager
from transformers import AutoTokenizer, Gemma3nForConditionalGeneration

from evals.lm_eval_adapter import G3nLM, lm_eval_task_config
from evals.results import read_samples
from evals.runner import run
from g3n_core import Variant
from g3n_core.builtin.checkpoint import ensure_tiny
from g3n_core.builtin.mini import mini_checkpoint

pytestmark = pytest.mark.usefixtures("single_thread")


def _evaluate(lm):
    """lm-eval's own evaluation of the built-in suite (its task index without the stock tasks: faster)."""
    manager = TaskManager(include_defaults=False)
    return lm_eval.simple_evaluate(model=lm, tasks=[lm_eval_task_config()], log_samples=True, verbosity="ERROR", task_manager=manager)


def _choices(lls: list[float], choices: list[str]) -> tuple[int, int]:
    lls = np.asarray(lls)
    return int(np.argmax(lls)), int(np.argmax(lls / np.asarray([len(c) for c in choices], dtype=np.float64)))


CHECKPOINTS = {"tiny": ensure_tiny, "mini": mini_checkpoint}


@pytest.fixture(scope="module", params=list(CHECKPOINTS))
def hf_results(request):
    """lm-eval's own evaluation of the suite with HFLM on a built-in checkpoint, loaded by transformers alone."""
    path = CHECKPOINTS[request.param]()
    model = Gemma3nForConditionalGeneration.from_pretrained(path, dtype=torch.float32, attn_implementation="sdpa").eval()
    hflm = HFLM(pretrained=model, tokenizer=AutoTokenizer.from_pretrained(path), backend="causal", batch_size=1)
    out = _evaluate(hflm)
    samples = sorted(out["samples"]["g3n_builtin_mc"], key=lambda s: s["doc_id"])
    return request.param, out["results"]["g3n_builtin_mc"], samples


def test_runner_choices_equal_lm_eval_hf(hf_results, tmp_path):
    name, results, samples = hf_results
    variant = Variant(model=name)
    frame = run([variant], ["builtin_mc"], tmp_path)
    ours = read_samples(tmp_path, variant.to_json(), "builtin_mc")
    assert len(ours) == len(samples) == 100
    for mine, theirs in zip(ours, samples):
        lls = [r[0] for r in theirs["filtered_resps"]]
        assert (mine["pred"], mine["pred_norm"]) == _choices(lls, theirs["doc"]["choices"]), theirs["doc_id"]
        assert np.allclose(mine["loglikelihoods"], lls, rtol=1e-5, atol=1e-4)
    acc = frame.set_index("metric")["value"]
    assert acc["acc"] == pytest.approx(results["acc,none"]) and acc["acc_norm"] == pytest.approx(results["acc_norm,none"])


def test_adapter_under_lm_eval_equals_hf(hf_results, request):
    name, results, samples = hf_results
    out = _evaluate(G3nLM(loaded=request.getfixturevalue(name)))
    mine = sorted(out["samples"]["g3n_builtin_mc"], key=lambda s: s["doc_id"])
    for a, b in zip(mine, samples):
        assert _choices([r[0] for r in a["filtered_resps"]], a["doc"]["choices"]) == _choices([r[0] for r in b["filtered_resps"]], b["doc"]["choices"])
    assert out["results"]["g3n_builtin_mc"]["acc,none"] == pytest.approx(results["acc,none"])


def test_adapter_rolling_and_generation_equal_hf(tiny):
    hflm = HFLM(pretrained=tiny.model, tokenizer=tiny.tokenizer, backend="causal", batch_size=1)
    ours = G3nLM(loaded=tiny)
    text = "The workbench compares variants of Gemma 3n. " * 6
    rolling = [Instance("loglikelihood_rolling", {}, (text,), 0)]
    assert ours.loglikelihood_rolling(rolling)[0] == pytest.approx(hflm.loglikelihood_rolling(rolling, disable_tqdm=True)[0], rel=1e-5)
    generate = [Instance("generate_until", {}, ("Question: What is the capital of Italy?\nAnswer:", {"until": ["\n\n"], "max_gen_toks": 8}), 0)]
    assert ours.generate_until(generate) == hflm.generate_until(generate, disable_tqdm=True)
