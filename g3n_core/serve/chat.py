"""POST /v1/chat/completions: OpenAI messages -> g3n_core prompt -> ChatStream -> one JSON reply or server-sent events."""

from __future__ import annotations

import secrets
import time

from fastapi.responses import JSONResponse, StreamingResponse

from ..generation import ChatStream
from ..prompt import prepare_prompt
from .files import FileStore
from .messages import MessageConverter
from .replies import Reply, ServedModel, check_max_tokens, generation_settings
from .schema import ChatCompletionRequest, parse
from .sse import stream_events


def _delta(piece: str | None, finish: str | None) -> dict:
    return {"index": 0, "delta": {} if piece is None else {"content": piece}, "logprobs": None, "finish_reason": finish}


def start_chat(served: ServedModel, files: FileStore, request: ChatCompletionRequest) -> ChatStream:
    """Convert, validate and tokenize the conversation, then start generating (raises typed errors at once)."""
    loaded = served.get_loaded()
    converter = MessageConverter(served.settings, files, served.policy.max_video_frames)
    messages = converter.convert(request.messages)
    asked = request.asked_tokens
    prepared = prepare_prompt(loaded, messages, asked or 1, served.policy)
    room = loaded.context_length - prepared.prompt_tokens
    settings = generation_settings(request.temperature, request.top_p, request.seed, asked or min(served.settings.max_tokens, room))
    return ChatStream(loaded, prepared, settings, time.perf_counter())


async def chat_completions(served: ServedModel, files: FileStore, body: object):
    """The chat completion for a request body (streamed when it asks)."""
    request = parse(ChatCompletionRequest, body)
    served.check(request.model)
    check_max_tokens(request.max_completion_tokens, served.settings, "max_completion_tokens")
    check_max_tokens(request.max_tokens, served.settings)
    stops = request.stops()
    slot = served.admit()
    try:
        stream = await served.run(start_chat, served, files, request)
    except BaseException:
        slot.release()
        raise
    reply = Reply(served, stream, stops, slot)
    head = {"id": f"chatcmpl-{secrets.token_hex(12)}", "created": int(time.time()), "model": served.model_id, "system_fingerprint": None}
    if request.stream:
        opening = {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}
        events = stream_events(reply, {**head, "object": "chat.completion.chunk"}, _delta, request.include_usage, opening)
        return StreamingResponse(events, media_type="text/event-stream")
    text = await reply.text()
    return JSONResponse({
        **head,
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None, "finish_reason": reply.finish_reason}],
        "usage": reply.usage(),
    })  # fmt: skip
