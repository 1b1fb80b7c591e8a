"""Joining the texts of overlapping windows without duplicated or lost words at the seams.

Two neighbouring windows heard the same stretch of audio at the seam (a pause, or about a second
of speech). Their texts are aligned on the longest run of words (compared lower-cased, without
punctuation) shared by the end of the first and the start of the second; the first text is kept
up to the run and the second from the run on, which also drops a word cut in two at either edge.
"""

from __future__ import annotations

import re

SEAM_WORDS = 8  # words at each side of a seam searched for the shared run
_EDGE = 3  # a one-word run counts only this close to both edges


def _key(word: str) -> str | None:
    key = re.sub(r"[\W_]+", "", word.casefold())
    return key or None  # pure punctuation never matches


def _shared_run(left: list[str], right: list[str]) -> tuple[int, int, int]:
    """(i, j, length) of the longest run left[i:i+length] == right[j:j+length] (by word key); the latest in
    `left`, then the earliest in `right`, among equally long runs."""
    a, b = [_key(w) for w in left], [_key(w) for w in right]
    best = (len(left), 0, 0)
    run = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a)):
        for j in range(len(b)):
            if a[i] is not None and a[i] == b[j]:
                run[i + 1][j + 1] = length = run[i][j] + 1
                start_i, start_j = i - length + 1, j - length + 1
                if length > best[2] or (length == best[2] and (start_i, -start_j) > (best[0], -best[1])):
                    best = (start_i, start_j, length)
    return best


def merge(left: list[str], right: list[str], pause_seam: bool = False) -> list[str]:
    """`left` then `right` with what both heard at the seam kept once.

    Across a pause the windows share only silence, so only a repeat of two or more words ending
    `left` and opening `right` is removed. Inside speech the shared run may sit anywhere within
    the last and first SEAM_WORDS words; a single shared word counts only near both edges.
    """
    if not left or not right:
        return left + right
    tail_start = max(0, len(left) - SEAM_WORDS)
    tail, head = left[tail_start:], right[:SEAM_WORDS]
    i, j, length = _shared_run(tail, head)
    if pause_seam:
        accepted = length >= 2 and i + length == len(tail) and j == 0
    else:
        accepted = length >= 2 or (length == 1 and i >= len(tail) - _EDGE and j < _EDGE)
    if not accepted:
        return left + right
    return left[: tail_start + i] + right[j:]


def stitch(texts: list[str], pause_seams: list[bool] | None = None) -> str:
    """The windows' texts joined (see `merge`); `pause_seams[k]` says whether window k ended in a pause."""
    seams = pause_seams or [False] * len(texts)
    words: list[str] = []
    for index, text in enumerate(texts):
        words = merge(words, text.split(), bool(index and seams[index - 1]))
    return " ".join(words)
