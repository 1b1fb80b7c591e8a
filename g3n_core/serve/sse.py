"""Server-sent events as OpenAI streams them: `data: {chunk}` lines, errors in the stream, `data: [DONE]` last."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

from .errors import from_exception
from .replies import Reply

Choice = Callable[[str | None, str | None], dict]  # (text delta or None, finish_reason) -> the chunk's one choice


def sse(data: dict | str) -> str:
    """One server-sent event."""
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"


async def stream_events(reply: Reply, head: dict, choice: Choice, include_usage: bool, opening: dict | None = None) -> AsyncIterator[str]:
    """The events of one streamed reply: an optional opening chunk, one chunk per delta, the finish chunk, usage, [DONE]."""
    if opening is not None:
        yield sse({**head, "choices": [opening]})
    try:
        async for piece in reply.deltas():
            yield sse({**head, "choices": [choice(piece, None)]})
    except Exception as err:  # noqa: BLE001 - the status line is already sent; the error goes in the stream, as OpenAI does
        yield sse(from_exception(err).body())
        yield sse("[DONE]")
        return
    yield sse({**head, "choices": [choice(None, reply.finish_reason)]})
    if include_usage:
        yield sse({**head, "choices": [], "usage": reply.usage()})
    yield sse("[DONE]")
