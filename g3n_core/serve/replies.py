"""Replies in flight: the served model and the line in front of it, stop strings, and text deltas from g3n_core's ChatStream.

Every reply is a g3n_core `ChatStream` (the one generate path): it generates under the loaded
model's lock, so concurrent requests take turns and each reads only its own streamer. At most
`max_queue` requests are admitted at once (HTTP 429 beyond); blocking work (media decoding,
waiting for the next piece) runs in worker threads under the server's own limiter, never in the
event loop. A client that goes away cancels its generation within a token.
"""

from __future__ import annotations

import secrets
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio

from ..generation import ChatStream, GenerationSettings
from ..media import MediaPolicy
from .errors import APIError
from .settings import ServeSettings


class Slot:
    """One admitted request; `release()` may be called any number of times."""

    def __init__(self, semaphore: threading.BoundedSemaphore):
        self._semaphore = semaphore
        self._released = False
        self._lock = threading.Lock()

    def release(self) -> None:
        """Give the place in line back."""
        with self._lock:
            if not self._released:
                self._released = True
                self._semaphore.release()


class ServedModel:
    """The model a server answers with: its id, how to get it loaded, its media policy and its line."""

    def __init__(self, model_id: str, get_loaded: Callable[[], Any], settings: ServeSettings, policy: MediaPolicy):
        self.model_id = model_id
        self.get_loaded = get_loaded
        self.settings = settings
        self.policy = policy
        self.created = int(time.time())
        self._slots = threading.BoundedSemaphore(settings.max_queue)
        self._limiter = anyio.CapacityLimiter(settings.max_queue)

    def check(self, name: str) -> None:
        """404 unless `name` is this server's model id."""
        if name != self.model_id:
            raise APIError(404, f"the model {name!r} does not exist here; this server serves {self.model_id!r} (GET /v1/models)", code="model_not_found", param="model")

    def admit(self) -> Slot:
        """A place in line, or 429 when `max_queue` requests are already admitted."""
        if not self._slots.acquire(blocking=False):
            raise APIError(429, f"the server is busy ({self.settings.max_queue} requests in line); retry shortly", type="rate_limit_error", code="queue_full")
        return Slot(self._slots)

    async def run(self, fn: Callable, *args: Any, abandon_on_cancel: bool = False) -> Any:
        """fn(*args) in a worker thread under the server's limiter."""
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter, abandon_on_cancel=abandon_on_cancel)


def generation_settings(temperature: float | None, top_p: float | None, seed: int | None, max_new_tokens: int) -> GenerationSettings:
    """OpenAI's sampling fields as g3n_core settings: temperature 0 is greedy; omitted fields take OpenAI's temperature 1 and
    Gemma's own top-p / top-k (as vLLM does from the checkpoint's generation config); no seed draws one."""
    temperature = 1.0 if temperature is None else temperature
    sample = temperature > 0
    defaults = GenerationSettings()
    return GenerationSettings(
        max_new_tokens=max_new_tokens,
        do_sample=sample,
        temperature=temperature if sample else 1.0,
        top_p=defaults.top_p if top_p is None else top_p,
        seed=secrets.randbelow(2**31) if seed is None else seed,
    )


def check_max_tokens(asked: int | None, settings: ServeSettings, param: str = "max_tokens") -> None:
    """400 when a request asks for more new tokens than the server allows."""
    if asked is not None and asked > settings.max_tokens:
        raise APIError(400, f"{param}={asked} is over this server's limit of {settings.max_tokens} new tokens", param=param)


class StopScanner:
    """Cuts text at the first stop string, holding back a tail that could still become one."""

    def __init__(self, stops: list[str]):
        self.stops = [s for s in stops if s]
        self.buffer = ""
        self.stopped = False

    def feed(self, piece: str) -> str:
        """The text that is safe to send after `piece` arrived."""
        if self.stopped:
            return ""
        self.buffer += piece
        hits = [i for i in (self.buffer.find(s) for s in self.stops) if i >= 0]
        if hits:
            out, self.buffer, self.stopped = self.buffer[: min(hits)], "", True
            return out
        hold = max((k for s in self.stops for k in range(1, len(s)) if self.buffer.endswith(s[:k])), default=0)
        out, self.buffer = self.buffer[: len(self.buffer) - hold], self.buffer[len(self.buffer) - hold :]
        return out

    def flush(self) -> str:
        """What is held back, once the reply is over."""
        out, self.buffer = ("" if self.stopped else self.buffer), ""
        return out


def _abandon(stream: ChatStream, slot: Slot | None) -> None:
    if stream.reply is None:
        stream.cancel()
    if slot is not None:
        slot.release()


class Reply:
    """One generation: text deltas (stop strings honoured), then finish_reason and token counts; releases `slot` when over."""

    def __init__(self, served: ServedModel, stream: ChatStream, stops: list[str], slot: Slot | None = None):
        self.served = served
        self.stream = stream
        self.scanner = StopScanner(stops)
        self.slot = slot
        # A response dropped before it was read (the client left early) must not hold the model or the line.
        self._finalizer = weakref.finalize(self, _abandon, stream, slot)

    async def deltas(self) -> AsyncIterator[str]:
        """The reply's text as it is generated."""
        pieces = iter(self.stream)
        try:
            while (piece := await self.served.run(next, pieces, None, abandon_on_cancel=True)) is not None:
                out = self.scanner.feed(piece)
                if self.scanner.stopped:
                    self.stream.cancel()  # stop decoding; the loop drains what is already on its way
                if out:
                    yield out
            tail = self.scanner.flush()
            if tail:
                yield tail
        finally:
            self._finalizer()

    async def text(self) -> str:
        """The whole reply."""
        return "".join([piece async for piece in self.deltas()])

    @property
    def finish_reason(self) -> str:
        """'stop' (end of turn or a stop string) or 'length'."""
        reply = self.stream.reply
        if self.scanner.stopped or reply is None or reply.finish_reason == "cancelled":
            return "stop"
        return reply.finish_reason

    def usage(self) -> dict:
        """OpenAI's usage object."""
        prompt = self.stream.prepared.prompt_tokens
        completion = self.stream.reply.new_tokens if self.stream.reply else 0
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
