"""Where a long clip is cut: windows of at most 30 s, ending in a pause where there is one.

The clip's loudness is measured in 20 ms frames. Near each window's 30 s limit (within the last
`SEARCH_SECONDS`) the longest pause is looked for; the window then ends at the pause's end and
the next one starts at its beginning, so the two overlap only by silence and no word is heard
twice. Where speech runs on without a pause, the window is cut at 30 s and the next one starts
`OVERLAP_SECONDS` earlier, so the word cut in two is whole in one of them; the text stitching
(`stitch.py`) then removes what both heard.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..media import MAX_AUDIO_SECONDS, SAMPLE_RATE

FRAME = SAMPLE_RATE // 50  # 20 ms loudness frames
SEARCH_SECONDS = 6.0  # how far back from a window's limit a pause is looked for
MIN_PAUSE_SECONDS = 0.12  # shorter quiet stretches (stops inside words) are not pauses
OVERLAP_SECONDS = 1.0  # overlap of two windows cut inside speech
SILENCE_DB = 35.0  # a frame this far below the clip's loud frames counts as silence
SILENCE_FLOOR = 1e-4  # ... or below this RMS in any case


@dataclass(frozen=True)
class Window:
    """Samples [start, end) of a clip; `pause_cut`: it ends in a pause (else at the limit, inside speech)."""

    start: int
    end: int
    pause_cut: bool = False

    @property
    def seconds(self) -> float:
        """Length in seconds."""
        return (self.end - self.start) / SAMPLE_RATE


def silent_frames(samples: np.ndarray) -> np.ndarray:
    """One bool per 20 ms frame: True where the frame is silence relative to the clip's loud frames."""
    count = samples.size // FRAME
    if count == 0:
        return np.zeros(0, bool)
    rms = np.sqrt(np.mean(np.square(samples[: count * FRAME].reshape(count, FRAME), dtype=np.float64), axis=1))
    loud = float(np.percentile(rms, 95))
    return rms < max(SILENCE_FLOOR, loud * 10 ** (-SILENCE_DB / 20))


def _longest_pause(silent: np.ndarray, first: int, last: int) -> tuple[int, int] | None:
    """The longest run of silent frames within frames [first, last), latest on ties; None if none is a pause."""
    best: tuple[int, int] | None = None
    run_start = None
    for index in range(first, last + 1):
        quiet = index < last and silent[index]
        if quiet and run_start is None:
            run_start = index
        elif not quiet and run_start is not None:
            if best is None or index - run_start >= best[1] - best[0]:
                best = (run_start, index)
            run_start = None
    if best is None or (best[1] - best[0]) * FRAME < MIN_PAUSE_SECONDS * SAMPLE_RATE:
        return None
    return best


def plan_windows(samples: np.ndarray, max_seconds: float = MAX_AUDIO_SECONDS) -> list[Window]:
    """Windows covering the whole clip, each at most `max_seconds`, cut in pauses where possible."""
    total = samples.size
    longest = int(max_seconds * SAMPLE_RATE)
    search = int(min(SEARCH_SECONDS, max_seconds / 2) * SAMPLE_RATE)
    overlap = int(min(OVERLAP_SECONDS, max_seconds / 4) * SAMPLE_RATE)
    silent = silent_frames(samples)
    windows: list[Window] = []
    start = 0
    while total - start > longest:
        limit = start + longest
        pause = _longest_pause(silent, -(-(limit - search) // FRAME), limit // FRAME)
        if pause is None:
            windows.append(Window(start, limit))
            start = limit - overlap
        else:
            begin, end = pause[0] * FRAME, min(pause[1] * FRAME, limit)
            windows.append(Window(start, end, pause_cut=True))
            start = begin
    windows.append(Window(start, total))
    return windows
