"""Generated token ids -> text, streamed or whole, the same text either way.

Gemma's tokenizer falls back to byte tokens (`<0xE2>`, `<0x82>`, ...) for what its vocabulary
lacks, and its decoder turns each run of consecutive byte tokens into text all at once: the run's
bytes as UTF-8 when they are valid, else one U+FFFD per byte. A run can therefore change after
it looks finished: `<0x35>` alone reads "5", but `<0x35> <0xAC>` reads "\\ufffd\\ufffd"
(b"5\\xac" is not UTF-8), and `<0xC3> <0xA9>` reads "é" until an `<0xAC>` makes all three
bytes U+FFFD. A streamer that sends "5" at once (as transformers' TextStreamer does for digits)
has sent text the whole reply does not contain.

`Detokenizer` holds a trailing run back until a token that ends it arrives (any token that is
not a byte token and is not skipped as special), so everything it sends is final, and `finish()`
sends the rest from the tokenizer's own decode of the whole reply. Every path that turns
generated ids into text (g3n_core's ChatStream, hence the app's chat, the CLI and the /v1 server
streamed or not; evals' local generation) goes through this module, so a reply read as deltas, as
a whole, locally or from the server is one string: `decode_text(tokenizer, ids)`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

log = logging.getLogger(__name__)

REPLACEMENT = "\ufffd"  # what a decoder shows for bytes that are not (yet) valid UTF-8


def decode_text(tokenizer, ids: Iterable[int]) -> str:
    """The text of generated token ids: the tokenizer's own decode of them all, special tokens skipped.

    This is the reference text of a reply: for invalid byte sequences it is whatever the tokenizer
    makes of them (Gemma's: one U+FFFD per byte of a run of byte tokens that is not valid UTF-8).
    """
    return tokenizer.decode(list(ids), skip_special_tokens=True)


def byte_token_ids(tokenizer) -> frozenset[int]:
    """Ids of the tokenizer's byte-fallback tokens `<0x00>` ... `<0xFF>` (empty for tokenizers without them)."""
    names = [f"<0x{value:02X}>" for value in range(256)]
    ids = tokenizer.convert_tokens_to_ids(names)
    unknown = tokenizer.unk_token_id
    return frozenset(i for name, i in zip(names, ids) if i is not None and (i != unknown or name == tokenizer.unk_token))


class Detokenizer:
    """Turns a reply's token ids into text deltas whose concatenation is exactly `decode_text(tokenizer, ids)`.

    `push(ids)` returns the text those ids settle (often "", while a run of byte tokens is open);
    `finish()` returns the rest. Text is settled up to the last token that ends a run: a token that
    is neither a byte token nor one the decode skips (a special token, which leaves the bytes on
    either side adjacent). Up to there the decoded text cannot change, because Gemma's decoder
    (byte-fallback, as sentencepiece's) decodes every other token on its own; a settled piece that
    ends in U+FFFD (a vocabulary piece that is one, or a byte-level tokenizer's incomplete character)
    is held too. The new text is decoded from the previous settled token on, so each push costs a
    few tokens, not the whole reply.
    """

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self._bytes = byte_token_ids(tokenizer)
        self._ends_run: dict[int, bool] = {}
        self._settled = 0  # ids[:settled] are decoded into `text` for good
        self._text: list[str] = []
        self._finished = False

    @property
    def text(self) -> str:
        """Everything returned so far (after `finish()`, the whole reply's text)."""
        return "".join(self._text)

    def _ends(self, token_id: int) -> bool:
        if token_id not in self._ends_run:
            self._ends_run[token_id] = token_id not in self._bytes and self.tokenizer.decode([token_id], skip_special_tokens=True) != ""
        return self._ends_run[token_id]

    def _window(self, end: int) -> str:
        """decode(ids[:end]) minus what is settled, decoded from the last settled token (the context a leading space needs)."""
        start = self._settled - 1 if self._settled else 0
        head = decode_text(self.tokenizer, self.ids[start : self._settled]) if self._settled else ""
        return decode_text(self.tokenizer, self.ids[start:end])[len(head) :]

    def push(self, ids: Iterable[int]) -> str:
        """Add newly generated ids; the text they settle."""
        if self._finished:
            raise RuntimeError("Detokenizer.push after finish()")  # a programming error, never a user's
        self.ids += [int(i) for i in ids]
        end = next((k for k in range(len(self.ids), self._settled, -1) if self._ends(self.ids[k - 1])), self._settled)
        if end == self._settled:
            return ""
        piece = self._window(end)
        if piece.endswith(REPLACEMENT):
            return ""
        self._settled = end
        self._text.append(piece)
        return piece

    def finish(self) -> str:
        """The rest of the text, from the tokenizer's decode of the whole reply (idempotent: later calls return "")."""
        if self._finished:
            return ""
        self._finished = True
        sent = self.text
        whole = decode_text(self.tokenizer, self.ids)
        if whole.startswith(sent):
            rest = whole[len(sent) :]
        else:  # a tokenizer whose decode depends on more than the last settled token (not Gemma's): keep the deltas' own sum
            log.warning("%s decodes %d ids differently whole than in pieces; the reply keeps the streamed text", type(self.tokenizer).__name__, len(self.ids))
            rest = self._window(len(self.ids))
        self._settled = len(self.ids)
        self._text.append(rest)
        return rest


__all__ = ["Detokenizer", "byte_token_ids", "decode_text"]
