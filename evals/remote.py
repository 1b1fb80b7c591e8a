"""RemoteEvalModel: answers evaluation requests through an OpenAI-compatible endpoint (a RemoteVariant).

Raw-text generation prompts go to /v1/completions and chat prompts (with images and audio, sent
as data URLs and base64 WAV/MP3) to /v1/chat/completions, greedy (temperature 0) with the
variant's seed; answers are cut at the request's stop strings as locally. Log-likelihoods use
/v1/completions with `echo` and `logprobs` (`max_tokens=0`, or 1 where a server insists on
generating, its token dropped): the context and the context plus
continuation are scored, and the continuation is the tokens after the context's token count,
which is lm-eval's split, done without a local tokenizer. A server that does not return prompt
log-probabilities makes those tasks `unsupported` (a reply whose log-probabilities do not start at
the prompt's first token, as from servers that score only generated tokens, counts as none). Requires the `openai` client (requirements-scale.txt).
"""

from __future__ import annotations

import base64
import io
import mimetypes
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from g3n_core import MediaPolicy, RemoteVariant
from g3n_core.errors import EvalError, UnsupportedError
from g3n_core.media import MediaNotes, load_audio, load_image

from .model import cut_at_stops
from .requests import GenerateRequest, Generation, Loglikelihood, LoglikelihoodRequest

PROMPTS_PER_REQUEST = 32  # prompts scored per /v1/completions call
GREEDY_TOLERANCE = 1e-5  # a token is the greedy one when no alternative beats it by more than this
OPENAI_AUDIO = ("wav", "mp3")  # the input_audio formats OpenAI defines


@dataclass
class PromptScores:
    """The server's log-probability of each prompt token (None for the first) and the top alternatives there."""

    token_logprobs: list[float | None]
    top_logprobs: list[dict | None]


@dataclass
class StreamTiming:
    """One streamed completion measured by the client: time to the first text, to the last, and the tokens received."""

    ttft_s: float
    decode_s: float
    tokens: int
    prompt_tokens: int | None
    counted_by: str  # "usage" (the server's completion_tokens) or "chunks" (one per streamed text chunk)


def split_pair(context: str, continuation: str) -> tuple[str, str]:
    """lm-eval's split: trailing spaces of the context belong to the continuation."""
    spaces = len(context) - len(context.rstrip())
    if spaces:
        return context[:-spaces], context[-spaces:] + continuation
    return context, continuation


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _wav(samples: np.ndarray) -> bytes:
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, samples, 16_000, format="WAV")
    return buffer.getvalue()


def openai_part(part: dict, policy: MediaPolicy) -> dict:
    """A g3n_core content part in OpenAI's format (media inlined as base64)."""
    kind = part.get("type")
    if kind == "text":
        return {"type": "text", "text": part["text"]}
    value = part.get(kind, part.get("path"))
    if kind == "image":
        if isinstance(value, (str, Path)) and Path(value).is_file():
            data, mime = Path(value).read_bytes(), mimetypes.guess_type(str(value))[0] or "image/png"
        else:
            data, mime = _png(load_image(value, policy)), "image/png"
        return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{base64.b64encode(data).decode()}"}}
    if kind == "audio":
        suffix = Path(value).suffix.lower().lstrip(".") if isinstance(value, (str, Path)) else ""
        if suffix in OPENAI_AUDIO and Path(value).is_file():
            data, fmt = Path(value).read_bytes(), suffix
        else:
            data, fmt = _wav(load_audio(value, policy, MediaNotes())), "wav"
        return {"type": "input_audio", "input_audio": {"data": base64.b64encode(data).decode(), "format": fmt}}
    raise UnsupportedError(f"a {kind!r} part cannot be sent to an OpenAI-compatible endpoint (text, images and audio can)")


def openai_messages(messages: list[dict], policy: MediaPolicy) -> list[dict]:
    """g3n_core chat messages as OpenAI messages."""
    out = []
    for message in messages:
        content = message["content"]
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else [openai_part(p, policy) for p in content]
        out.append({"role": message["role"], "content": parts})
    return out


class RemoteEvalModel:
    """Answers LoglikelihoodRequests and GenerateRequests through one RemoteVariant's endpoint."""

    def __init__(self, variant: RemoteVariant, seed: int = 0, media_policy: MediaPolicy | None = None):
        try:
            import openai
        except ImportError as err:
            raise EvalError("remote variants need the openai client: pip install -r requirements-scale.txt") from err
        self.variant = variant
        self.seed = seed
        self.media_policy = media_policy or MediaPolicy()
        self.openai = openai
        self.client = openai.OpenAI(base_url=variant.base_url, api_key=variant.api_key(), timeout=variant.timeout_s, max_retries=2)
        self._no_logprobs: str | None = None
        self._score_tokens = 0  # new tokens asked for with echo (1 for servers that refuse 0)

    @property
    def has_vision(self) -> bool:
        """True when the variant says the endpoint takes images."""
        return "vision" in self.variant.towers

    @property
    def has_audio(self) -> bool:
        """True when the variant says the endpoint takes audio."""
        return "audio" in self.variant.towers

    # -- generation -----------------------------------------------------------------------------

    def generate_one(self, request: GenerateRequest) -> Generation:
        """Greedy, seeded generation for one request, cut at its first stop string."""
        common = dict(model=self.variant.model, max_tokens=request.max_new_tokens, temperature=0.0, seed=self.seed, stop=list(request.until[:4]) or None)
        if request.is_chat:
            response = self.client.chat.completions.create(messages=openai_messages(request.prompt, self.media_policy), **common)
            text = response.choices[0].message.content or ""
        else:
            response = self.client.completions.create(prompt=request.prompt, **common)
            text = response.choices[0].text or ""
        tokens = response.usage.completion_tokens if response.usage else 0
        return Generation(cut_at_stops(text, request.until), int(tokens or 0))

    def generate(self, requests: list[GenerateRequest]) -> list[Generation]:
        """Generations for several requests, one at a time."""
        return [self.generate_one(r) for r in requests]

    def stream_completion(self, prompt: str, max_tokens: int) -> StreamTiming:
        """Stream one greedy raw-text completion and time it from this side of the network."""
        started = time.perf_counter()
        stream = self.client.completions.create(
            model=self.variant.model, prompt=prompt, max_tokens=max_tokens, temperature=0.0, seed=self.seed, stream=True, stream_options={"include_usage": True}
        )
        stamps: list[float] = []
        usage = None
        for chunk in stream:
            if chunk.choices and chunk.choices[0].text:
                stamps.append(time.perf_counter())
            if getattr(chunk, "usage", None):
                usage = chunk.usage
        if not stamps:
            raise EvalError(f"{self.variant.name} streamed no text for the latency prompt")
        tokens, counted_by = (usage.completion_tokens, "usage") if usage and usage.completion_tokens else (len(stamps), "chunks")
        return StreamTiming(stamps[0] - started, stamps[-1] - stamps[0], int(tokens), usage.prompt_tokens if usage else None, counted_by)

    # -- log-likelihood -------------------------------------------------------------------------

    def _unsupported(self, why: str, err: Exception | None = None) -> UnsupportedError:
        self._no_logprobs = f"{self.variant.base_url} does not score prompts (completions with echo and logprobs): {why}"
        return UnsupportedError(self._no_logprobs)

    def _score_batch(self, batch: list[str]) -> list:
        """The completions response choices for a batch, asking for no new token (else one, as vLLM needs)."""
        errors = (self.openai.BadRequestError, self.openai.NotFoundError, self.openai.UnprocessableEntityError, self.openai.InternalServerError)
        while True:
            try:
                response = self.client.completions.create(model=self.variant.model, prompt=batch, max_tokens=self._score_tokens, echo=True, logprobs=1, temperature=0.0)
                return sorted(response.choices, key=lambda c: c.index)
            except errors as err:
                if self._score_tokens == 0:  # some servers (vLLM) always generate a token: ask for one and drop it
                    self._score_tokens = 1
                    continue
                raise self._unsupported(err.message, err) from err

    def _score(self, prompts: list[str]) -> dict[str, PromptScores]:
        """Per prompt, the log-probabilities of its own tokens (each prompt scored once), or UnsupportedError."""
        if self._no_logprobs:
            raise UnsupportedError(self._no_logprobs)
        unique = list(dict.fromkeys(prompts))
        found: dict[str, PromptScores] = {}
        for start in range(0, len(unique), PROMPTS_PER_REQUEST):
            batch = unique[start : start + PROMPTS_PER_REQUEST]
            choices = self._score_batch(batch)
            if len(choices) != len(batch):
                raise self._unsupported(f"{len(choices)} choices came back for {len(batch)} prompts")
            for prompt, choice in zip(batch, choices):
                found[prompt] = self._prompt_part(prompt, choice.logprobs)
        return found

    def _prompt_part(self, prompt: str, logprobs) -> PromptScores:
        """The entries of an echoed `logprobs` object that belong to the prompt (a generated token is dropped)."""
        values = list(getattr(logprobs, "token_logprobs", None) or [])
        tops = list(getattr(logprobs, "top_logprobs", None) or [None] * len(values))
        offsets = getattr(logprobs, "text_offset", None)
        if offsets:
            keep = sum(1 for offset in offsets if offset < len(prompt))
        else:
            keep = len(values) - self._score_tokens
        # The first prompt token has no context, so its log-probability is None; a server that scores only
        # generated tokens (no real echo) fails this check instead of yielding meaningless numbers.
        if keep < 1 or values[0] is not None:
            raise self._unsupported("the returned log-probabilities do not start at the prompt's first token")
        return PromptScores(values[:keep], tops[:keep])

    def loglikelihood(self, requests: list[LoglikelihoodRequest], exact: bool = False) -> list[Loglikelihood]:
        """log P(continuation | context) per request, from the server's prompt log-probabilities (`exact` changes nothing: one pass each)."""
        pairs = [split_pair(r.context, r.continuation) for r in requests]
        contexts = [c for c, _ in pairs if c]
        scored = self._score(contexts + [c + k for c, k in pairs])
        answers = []
        for context, continuation in pairs:
            whole = scored[context + continuation]
            start = len(scored[context].token_logprobs) if context else 0
            logprobs = [lp for lp in whole.token_logprobs[start:] if lp is not None]
            tops = whole.top_logprobs[start:]
            greedy = all(
                top is None or lp is None or lp >= max(top.values(), default=lp) - GREEDY_TOLERANCE
                for lp, top in zip(whole.token_logprobs[start:], tops)
            )
            answers.append(Loglikelihood(float(sum(logprobs)), bool(greedy and tops), len(logprobs)))
        return answers

    def loglikelihood_rolling(self, texts: list[str]) -> list[float]:
        """Whole-text log-likelihoods (each text scored in one pass; it must fit the server's context)."""
        scored = self._score(texts)
        return [float(sum(lp for lp in scored[t].token_logprobs if lp is not None)) for t in texts]

    # -- measurements ---------------------------------------------------------------------------

    def measure(self, what: str, settings) -> list:
        """Measurements of the endpoint from the client: latency from the stream; memory and sparsity unknown."""
        from .measure.remote import measure_remote

        return measure_remote(self, what, settings)
