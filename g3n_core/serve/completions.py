"""POST /v1/completions: raw text prompts (no chat template), generated through the same ChatStream, or scored.

A prompt is tokenized as lm-evaluation-harness tokenizes one (the tokenizer's default special
tokens, none added when the text already starts with BOS), so a remote evaluation sends the same
token ids as a local one. `echo=true, max_tokens=0, logprobs=K` returns every prompt token's
log-probability and its K most likely alternatives (`g3n_core.logprobs`): what log-likelihood
tasks need. Media placeholder tokens cannot be smuggled into a raw prompt.
"""

from __future__ import annotations

import secrets
import time

import torch
from fastapi.responses import JSONResponse, StreamingResponse

from ..errors import ContextOverflowError, MessageError
from ..generation import ChatStream
from ..logprobs import prompt_logprobs
from ..prompt import PreparedPrompt
from .replies import Reply, ServedModel, Slot, check_max_tokens, generation_settings
from .schema import CompletionRequest, parse
from .sse import stream_events


def encode_text(loaded, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    """Token ids of a raw prompt and each token's character span (lm-eval's tokenization)."""
    tokenizer = loaded.tokenizer
    starts_with_bos = bool(tokenizer.bos_token) and text.startswith(tokenizer.bos_token)
    encoded = tokenizer(text, add_special_tokens=not starts_with_bos, return_offsets_mapping=True)
    ids = list(encoded["input_ids"])
    media = {loaded.processor.image_token_id, loaded.processor.audio_token_id}
    if media & set(ids):
        raise MessageError("the prompt holds image or audio placeholder tokens; send media through /v1/chat/completions instead")
    if not ids:
        raise MessageError("the prompt is empty")
    return ids, [tuple(span) for span in encoded["offset_mapping"]]


def prepare_text(loaded, text: str, max_new_tokens: int) -> PreparedPrompt:
    """Model inputs for a raw prompt, checked against the context."""
    ids, _ = encode_text(loaded, text)
    if len(ids) + max_new_tokens > loaded.context_length:
        raise ContextOverflowError(f"the prompt has {len(ids)} tokens plus {max_new_tokens} new ones, over the model's context of {loaded.context_length}; shorten it or lower max_tokens")
    tensor = torch.tensor([ids], dtype=torch.long)
    return PreparedPrompt({"input_ids": tensor, "attention_mask": torch.ones_like(tensor)}, len(ids), 0, 0)


def score_text(loaded, text: str, top: int) -> dict:
    """OpenAI's `logprobs` object for every token of `text` (the first token has none)."""
    ids, spans = encode_text(loaded, text)
    if len(ids) > loaded.context_length:
        raise ContextOverflowError(f"the prompt has {len(ids)} tokens, over the model's context of {loaded.context_length}")
    found = prompt_logprobs(loaded, ids, top=max(1, top))
    tokenizer = loaded.tokenizer

    def piece(token_id: int, span: tuple[int, int]) -> str:
        return text[span[0] : span[1]] if span[1] > span[0] else tokenizer.decode([token_id])

    tokens = [piece(i, s) for i, s in zip(ids, spans)]
    tops = [None if alts is None else {tokenizer.decode([i]): lp for i, lp in alts[: max(top, 0)]} for alts in found.top]
    return {"tokens": tokens, "token_logprobs": found.token_logprobs, "top_logprobs": tops, "text_offset": [s[0] for s in spans]}


def start_completion(served: ServedModel, request: CompletionRequest, prompt: str) -> ChatStream:
    """Tokenize one prompt and start generating."""
    loaded = served.get_loaded()
    prepared = prepare_text(loaded, prompt, request.max_tokens)
    settings = generation_settings(request.temperature, request.top_p, request.seed, request.max_tokens)
    return ChatStream(loaded, prepared, settings, time.perf_counter())


def _choice(index: int, text: str, finish: str | None, logprobs: dict | None = None) -> dict:
    return {"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish}


async def _scores(served: ServedModel, request: CompletionRequest, slot: Slot) -> tuple[list[dict], int]:
    try:
        loaded = await served.run(served.get_loaded)
        choices, tokens = [], 0
        for index, prompt in enumerate(request.prompts()):
            logprobs = await served.run(score_text, loaded, prompt, request.logprobs or 0)
            tokens += len(logprobs["tokens"])
            choices.append(_choice(index, prompt, "length", logprobs))
        return choices, tokens
    finally:
        slot.release()


async def completions(served: ServedModel, body: object):
    """The completion (or scores) for a request body."""
    request = parse(CompletionRequest, body)
    served.check(request.model)
    check_max_tokens(request.max_tokens, served.settings)
    if len(request.prompts()) > served.settings.max_prompts:
        raise MessageError(f"more than {served.settings.max_prompts} prompts in one request; send fewer")
    stops = request.stops()
    head = {"id": f"cmpl-{secrets.token_hex(12)}", "object": "text_completion", "created": int(time.time()), "model": served.model_id, "system_fingerprint": None}
    slot = served.admit()
    if request.scores_only:
        choices, tokens = await _scores(served, request, slot)
        return JSONResponse({**head, "choices": choices, "usage": {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens}})
    if request.stream:
        try:
            stream = await served.run(start_completion, served, request, request.prompts()[0])
        except BaseException:
            slot.release()
            raise
        echo = request.prompts()[0] if request.echo else None
        opening = _choice(0, echo, None) if echo else None
        choice = lambda piece, finish: _choice(0, piece or "", finish)  # noqa: E731
        events = stream_events(Reply(served, stream, stops, slot), head, choice, request.include_usage, opening)
        return StreamingResponse(events, media_type="text/event-stream")
    choices, usages = [], []
    try:
        for index, prompt in enumerate(request.prompts()):  # one place in line covers the request's prompts, answered in turn
            reply = Reply(served, await served.run(start_completion, served, request, prompt), stops)
            text = await reply.text()
            choices.append(_choice(index, (prompt if request.echo else "") + text, reply.finish_reason))
            usages.append(reply.usage())
    finally:
        slot.release()
    usage = {k: sum(u[k] for u in usages) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
    return JSONResponse({**head, "choices": choices, "usage": usage})
