"""Long conversations within the context: the oldest exchanges, with their media, are left out first.

A conversation that no longer fits the model's context (prompt plus the reply's max_new_tokens)
keeps its system prompt and its newest user turn and as many of the exchanges (a user turn and
the reply to it) before that as fit, newest first; the reply then carries a warning that says how
many were left out. Media of dropped turns is never decoded. Only a newest turn that cannot fit on
its own is an error, and its message says what to remove.

The logic works on normalized messages (`g3n_core.prompt.normalize_messages`) and a token counter
the caller gives, so every front end (the app, the API, servers) trims the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

MEDIA_KINDS = ("image", "audio", "video")


@dataclass
class FittedConversation:
    """The messages that go to the model and what was left out of them."""

    messages: list[dict]
    dropped_turns: int = 0  # user turns left out, each with the reply that followed it
    dropped_media: dict[str, int] = field(default_factory=dict)  # kind -> parts left out

    def warning(self, context_length: int) -> str | None:
        """The note a reply carries when turns were left out (None when nothing was)."""
        if not self.dropped_turns:
            return None
        media = ", ".join(f"{n} {kind}{'s' if n > 1 else ''}" for kind, n in self.dropped_media.items() if n)
        turns = f"the {self.dropped_turns} oldest turn{'s' if self.dropped_turns > 1 else ''}"
        return (
            f"the conversation is longer than the model's context ({context_length} tokens): "
            f"{turns}{f' (with {media})' if media else ''} were left out of this reply; clear the chat to start afresh"
        )


def split_system(messages: list[dict]) -> tuple[list[dict], list[dict]]:
    """(the system message as a list of zero or one, the turns after it)."""
    if messages and messages[0]["role"] == "system":
        return messages[:1], messages[1:]
    return [], messages


def count_media(messages: list[dict]) -> dict[str, int]:
    """Media parts by kind."""
    kinds = [part["type"] for message in messages for part in message["content"]]
    return {kind: kinds.count(kind) for kind in MEDIA_KINDS}


def fit_conversation(messages: list[dict], fits: Callable[[list[dict]], bool]) -> FittedConversation:
    """Keep the newest exchanges for which `fits(kept messages)` holds; the newest turn always stays.

    `messages` are normalized (an optional system message, then user/assistant turns ending with a
    user turn). `fits` is monotonic in practice: fewer turns never need more tokens. Whether the
    newest turn fits on its own is the caller's to check (it alone decides the error message).
    """
    system, turns = split_system(messages)
    exchanges = len(turns) // 2  # user + assistant pairs before the newest user turn
    if fits(messages) or exchanges == 0:
        return FittedConversation(messages)

    def kept(drop: int) -> list[dict]:
        return system + turns[2 * drop :]

    low, high = 1, exchanges  # dropping `high` exchanges is the last resort: the newest turn alone
    while low < high:  # the fewest exchanges to drop such that the rest fits
        middle = (low + high) // 2
        if fits(kept(middle)):
            high = middle
        else:
            low = middle + 1
    return FittedConversation(kept(low), dropped_turns=low, dropped_media=count_media(turns[: 2 * low]))
