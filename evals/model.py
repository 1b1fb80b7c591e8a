"""EvalModel: answers evaluation requests with a g3n_core LoadedModel (multimodal or text-only).

Log-likelihoods go through `evals.scoring` (lm-eval's tokenization, shared-context scoring);
generation is greedy and seeded, through transformers' `generate` with the Variant's speed
settings (`loaded.extras["generate_kwargs"]`). Raw-text prompts are tokenized as lm-eval does
(tokenizer default special tokens, so BOS first); chat prompts, which may hold images and audio,
go through g3n_core's prompt preparation and the checkpoint's chat template.
"""

from __future__ import annotations

import torch
from transformers import GenerationConfig, StoppingCriteria, StoppingCriteriaList

from g3n_core.detokenize import Detokenizer, decode_text
from g3n_core.generation import end_of_turn_id, model_inputs
from g3n_core.loading import LoadedModel
from g3n_core.media import MediaPolicy
from g3n_core.prompt import prepare_prompt

from .requests import GenerateRequest, Generation, Loglikelihood, LoglikelihoodRequest
from .scoring import ScoringSettings, TokenPair, encode_pair, score_pairs, score_pairs_exact, tok_encode


class _StopOnStrings(StoppingCriteria):
    """Stop once the settled text (g3n_core's Detokenizer, as the server streams it) holds a stop string (batch of one)."""

    def __init__(self, tokenizer, stops: tuple[str, ...], prompt_length: int):
        self.detokenizer, self.stops, self.prompt_length = Detokenizer(tokenizer), stops, prompt_length

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        seen = self.prompt_length + len(self.detokenizer.ids)
        self.detokenizer.push(input_ids[0, seen:].tolist())
        hit = any(stop in self.detokenizer.text for stop in self.stops)
        return torch.full((input_ids.shape[0],), hit, dtype=torch.bool, device=input_ids.device)


def cut_at_stops(text: str, stops: tuple[str, ...]) -> str:
    """The text before the first stop string (lm-eval's post-processing of generations)."""
    for stop in stops:
        if stop:
            text = text.split(stop)[0]
    return text


class EvalModel:
    """Answers LoglikelihoodRequests and GenerateRequests for one loaded Variant."""

    def __init__(
        self,
        loaded: LoadedModel,
        scoring: ScoringSettings | None = None,
        seed: int = 0,
        media_policy: MediaPolicy | None = None,
    ):
        self.loaded = loaded
        self.scoring = scoring or ScoringSettings()
        self.seed = seed
        self.media_policy = media_policy or MediaPolicy()

    @property
    def tokenizer(self):
        """The checkpoint's tokenizer."""
        return self.loaded.tokenizer

    @property
    def has_vision(self) -> bool:
        """True when the variant takes images."""
        return self.loaded.has_vision

    @property
    def has_audio(self) -> bool:
        """True when the variant takes audio."""
        return self.loaded.has_audio

    @property
    def max_length(self) -> int:
        """Longest input the model takes (its context length)."""
        return self.loaded.context_length

    # -- log-likelihood -------------------------------------------------------------------------

    def encode(self, request: LoglikelihoodRequest) -> TokenPair:
        """Token ids of a request's context and continuation, as lm-eval makes them."""
        return encode_pair(self.tokenizer, request.context, request.continuation)

    def loglikelihood(self, requests: list[LoglikelihoodRequest], exact: bool = False) -> list[Loglikelihood]:
        """log P(continuation | context) per request; `exact` uses lm-eval's one-pass-per-pair computation."""
        return self.loglikelihood_tokens([self.encode(r) for r in requests], exact)

    def loglikelihood_tokens(self, pairs: list[TokenPair], exact: bool = False) -> list[Loglikelihood]:
        """Scores of already tokenized (context, continuation) pairs."""
        if not pairs:
            return []
        with self.loaded.lock:
            if exact:
                return score_pairs_exact(self.loaded.model, pairs, self.max_length)
            return score_pairs(self.loaded.model, pairs, self.max_length, self.scoring)

    def loglikelihood_rolling(self, texts: list[str]) -> list[float]:
        """Log-likelihood of whole texts in disjoint windows of the context length (lm-eval's rolling scheme)."""
        from lm_eval.utils import get_rolling_token_windows, make_disjoint_window

        prefix = self.tokenizer.bos_token_id if self.tokenizer.bos_token_id is not None else self.tokenizer.eos_token_id
        pairs: list[TokenPair] = []
        owners: list[int] = []
        for index, text in enumerate(texts):
            windows = get_rolling_token_windows(
                token_list=tok_encode(self.tokenizer, text), prefix_token=prefix, max_seq_len=self.max_length, context_len=1
            )
            for context, continuation in map(make_disjoint_window, windows):
                pairs.append((list(context), list(continuation)))
                owners.append(index)
        totals = [0.0] * len(texts)
        for owner, result in zip(owners, self.loglikelihood_tokens(pairs)):
            totals[owner] += result.logprob
        return totals

    # -- generation -----------------------------------------------------------------------------

    def _inputs(self, request: GenerateRequest) -> dict[str, torch.Tensor]:
        if request.is_chat:
            prepared = prepare_prompt(self.loaded, request.prompt, request.max_new_tokens, self.media_policy)
            return model_inputs(self.loaded, prepared)
        ids = tok_encode(self.tokenizer, request.prompt)[-(self.max_length - request.max_new_tokens) :]
        ids_tensor = torch.tensor([ids], device=self.loaded.device)
        return {"input_ids": ids_tensor, "attention_mask": torch.ones_like(ids_tensor)}

    def _chat(self, request: GenerateRequest) -> Generation:
        """A chat request through g3n_core's chat path, which answers long clips window by window."""
        from g3n_core.generation import GenerationSettings, chat

        settings = GenerationSettings(max_new_tokens=request.max_new_tokens, seed=self.seed, long_audio=request.long_audio)
        reply = chat(self.loaded, request.prompt, settings, self.media_policy)
        return Generation(cut_at_stops(reply.text, request.until), reply.new_tokens, {"audio_windows": reply.audio_windows})

    def generate_one(self, request: GenerateRequest) -> Generation:
        """Greedy, seeded generation for one request, cut at its first stop string."""
        if request.is_chat and request.long_audio != "truncate":
            return self._chat(request)
        tokenizer = self.tokenizer
        inputs = self._inputs(request)
        prompt_length = inputs["input_ids"].shape[1]
        config = GenerationConfig(
            max_new_tokens=request.max_new_tokens,
            do_sample=False,
            eos_token_id=[tokenizer.eos_token_id, end_of_turn_id(tokenizer)],
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
        )
        stops = StoppingCriteriaList([_StopOnStrings(tokenizer, request.until, prompt_length)] if request.until else [])
        with self.loaded.lock, torch.inference_mode():
            torch.manual_seed(self.seed)
            output = self.loaded.model.generate(
                **inputs,
                generation_config=config,
                stopping_criteria=stops,
                **self.loaded.extras.get("generate_kwargs", {}),
            )
        new = output[0, prompt_length:]
        text = decode_text(tokenizer, new.tolist())
        return Generation(cut_at_stops(text, request.until), int(new.numel()))

    def generate(self, requests: list[GenerateRequest]) -> list[Generation]:
        """Generations for several requests, one at a time."""
        return [self.generate_one(r) for r in requests]
