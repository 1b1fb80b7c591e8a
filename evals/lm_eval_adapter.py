"""lm-evaluation-harness model class for any Variant: `lm_eval` can run its own tasks on the workbench.

    import evals.lm_eval_adapter  # registers the model name "g3n"
    lm_eval.simple_evaluate(model="g3n", model_args="model=tiny,attn=eager,sparsity=off", tasks=["arc_easy"])

or from the shell (lm-eval's own CLI, with this model registered first):

    python -m evals.lm_eval_adapter run --model g3n --model_args model=tiny,attn=sdpa --tasks arc_easy

model_args are Variant fields (`towers=text` for text-only; `spec="tiny attn=eager"` also works).
Log-likelihoods use the workbench's shared-context scorer with lm-eval's own tokenization, so
choices match lm-eval's `hf` model on the same checkpoint; generation is greedy.

`lm_eval_task_config("builtin_mc")` is the built-in multiple-choice suite as an lm-eval task
config, used by the parity test and benchmarks/mc_eval_speed.py.
"""

from __future__ import annotations

from typing import Any

import torch
from lm_eval.api.model import TemplateLM
from lm_eval.api.registry import register_model

from g3n_core import Variant, load_model, parse_variant_spec
from g3n_core.errors import EvalError

from .model import EvalModel
from .requests import GenerateRequest
from .scoring import prefix_token_id, tok_encode
from .tasks.builtin import DATA

LM_EVAL_ONLY_ARGS = {"batch_size", "max_batch_size", "dtype_override"}


def variant_from_args(spec: str | None = None, **fields: Any) -> Variant:
    """A Variant from lm-eval model_args: a `spec` string and/or Variant fields given as strings."""
    parts = [spec] if spec else []
    parts += [f"{key}={value}" for key, value in fields.items() if value is not None]
    return parse_variant_spec(" ".join(parts) or "tiny")


@register_model("g3n", "gemma3n-workbench")
class G3nLM(TemplateLM):
    """An lm_eval LM answering loglikelihood, loglikelihood_rolling and generate_until with a Variant."""

    def __init__(self, variant: Variant | str | None = None, loaded=None, device: str | None = None, **kwargs: Any):
        super().__init__()
        fields = {k: v for k, v in kwargs.items() if k not in LM_EVAL_ONLY_ARGS}
        if device and device.startswith("cuda") and not torch.cuda.is_available():
            device = None  # lm-eval's CLI asks for cuda:0 by default; like its hf model, fall back to the CPU
        if loaded is None:
            if isinstance(variant, Variant):
                chosen = variant.replace(device=device) if device else variant
            else:
                chosen = variant_from_args(variant, device=device, **fields)
            loaded = load_model(chosen)
        self.eval_model = EvalModel(loaded)
        self.tokenizer = loaded.tokenizer
        self._device = loaded.device

    @property
    def eot_token_id(self) -> int:
        """End of text: the tokenizer's EOS."""
        return self.tokenizer.eos_token_id

    @property
    def prefix_token_id(self) -> int:
        """Stands in for an empty context: BOS."""
        return prefix_token_id(self.tokenizer)

    @property
    def max_length(self) -> int:
        """The model's context length."""
        return self.eval_model.max_length

    @property
    def tokenizer_name(self) -> str:
        """Name used in lm-eval's request cache keys."""
        return str(self.tokenizer.name_or_path).replace("/", "__")

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs) -> list[int]:
        """HFLM's tokenization (BOS unless the text already starts with it)."""
        return tok_encode(self.tokenizer, string, add_special_tokens)

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, **kwargs) -> list[tuple[float, bool]]:
        answers = self.eval_model.loglikelihood_tokens([(ctx, cont) for _, ctx, cont in requests])
        results = []
        for (strings, _, _), answer in zip(requests, answers):
            result = (answer.logprob, answer.is_greedy)
            if strings is not None:
                self.cache_hook.add_partial("loglikelihood", strings, result)
            results.append(result)
        return results

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        """Whole-text log-likelihoods in disjoint windows."""
        texts = [req.args[0] for req in requests]
        totals = self.eval_model.loglikelihood_rolling(texts)
        for text, total in zip(texts, totals):
            self.cache_hook.add_partial("loglikelihood_rolling", (text,), total)
        return totals

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        """Greedy generation until a stop string or max_gen_toks (default 256)."""
        outputs = []
        for req in requests:
            context, gen_kwargs = req.args
            gen_kwargs = dict(gen_kwargs or {})
            if gen_kwargs.get("do_sample"):
                raise EvalError("the g3n model generates greedily only; drop do_sample from the task's generation_kwargs")
            until = gen_kwargs.get("until") or []
            until = (until,) if isinstance(until, str) else tuple(until)
            request = GenerateRequest(context, until=until, max_new_tokens=int(gen_kwargs.get("max_gen_toks", 256)))
            text = self.eval_model.generate_one(request).text
            self.cache_hook.add_partial("generate_until", (context, req.args[1]), text)
            outputs.append(text)
        return outputs


def lm_eval_task_config(name: str = "builtin_mc") -> dict[str, Any]:
    """The built-in multiple-choice suite as an lm-eval task config (same prompts, 3-shot first_n)."""
    if name != "builtin_mc":
        raise EvalError(f"only builtin_mc has an lm-eval task config, not {name!r}")
    return {
        "task": "g3n_builtin_mc",
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(DATA / "text_mc.jsonl"), "train": str(DATA / "text_mc_fewshot.jsonl")}},
        "output_type": "multiple_choice",
        "test_split": "test",
        "fewshot_split": "train",
        "fewshot_config": {"sampler": "first_n"},
        "num_fewshot": 3,
        "doc_to_text": "Question: {{question}}\nAnswer:",
        "doc_to_target": "answer",
        "doc_to_choice": "choices",
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}, {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True}],
    }


if __name__ == "__main__":
    from lm_eval.__main__ import cli_evaluate

    cli_evaluate()
