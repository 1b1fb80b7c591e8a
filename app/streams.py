"""Replies in flight, per browser session, so that a session's stop button ends its own reply.

The stop button cancels the session's g3n_core ChatStream (the model is free after the current
token) and the reply then finishes normally, with its stats, marked as stopped. A stop that comes
while the reply still waits in the queue is remembered and ends it as soon as it starts.
"""

from __future__ import annotations

import threading

from g3n_core import ChatStream


class SessionStreams:
    """The ChatStream each session is streaming, and the sessions that asked to stop before theirs began."""

    def __init__(self) -> None:
        self._streams: dict[str, ChatStream] = {}
        self._stop_early: set[str] = set()
        self._lock = threading.Lock()

    def new_turn(self, session: str) -> None:
        """A new message from `session`: forget a stop that came too late for the previous reply."""
        with self._lock:
            self._stop_early.discard(session)

    def started(self, session: str, stream: ChatStream) -> None:
        """`session` streams `stream` now (cancelled at once if it already asked to stop)."""
        with self._lock:
            self._streams[session] = stream
            if session in self._stop_early:
                self._stop_early.discard(session)
                stream.cancel()

    def finished(self, session: str, stream: ChatStream) -> None:
        """`stream` of `session` is over."""
        with self._lock:
            if self._streams.get(session) is stream:
                del self._streams[session]

    def stop(self, session: str) -> bool:
        """Stop `session`'s reply; True when one was streaming, else the reply still to come is stopped."""
        with self._lock:
            stream = self._streams.get(session)
            if stream is None:
                self._stop_early.add(session)
                return False
        stream.cancel()
        return True
