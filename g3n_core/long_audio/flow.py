"""Answering a clip longer than Gemma 3n's 30 s: window by window, through the one chat path.

`plan_long_audio` decides, before anything is generated, whether the request needs windows: the
last user turn holds a clip over 30 s, `long_audio` is not `truncate`, and the prompt asks for a
transcript or a translation (`chunk`), or any prompt with `transcribe_then_answer`. The clip is
decoded once, up to `MediaPolicy.max_audio_seconds`. `WindowedStream` then runs one ordinary
`stream_chat` request per window (the same prompt with that window as the clip) and stitches the
texts; with `transcribe_then_answer` it transcribes the windows, then asks the user's question
over the transcript. It behaves like a ChatStream: iterate for text, `cancel()`, `reply`.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from ..media import MAX_AUDIO_SECONDS, SAMPLE_RATE, AudioClip, MediaPolicy, cut_warning, media_payload, read_audio
from ..prompt import normalize_messages
from .stitch import SEAM_WORDS, merge
from .windows import Window, plan_windows

LONG_AUDIO_MODES = ("truncate", "chunk", "transcribe_then_answer")
TRANSCRIBE_INSTRUCTION = "Transcribe this audio clip."
# Prompts that ask for what is said (or its translation): these are answered window by window.
_TRANSCRIPTION = re.compile(
    r"\b(transcri\w*|transkri\w*|trascri\w*|translat\w*|tradu\w*|übersetz\w*|dictat\w*|subtitl\w*|caption\w*|verbatim"
    r"|write (it |this |that |everything )?down|what (is|was|are|were) (being )?(said|spoken|sung)|what does (he|she|it|they|the \w+) say)",
    re.IGNORECASE,
)

StartWindow = Callable[[list[dict], float], Any]  # (messages, started) -> a started ChatStream


def is_transcription_prompt(text: str) -> bool:
    """True when the prompt asks for the clip's words (transcribe, translate, 'what is said', ...)."""
    return bool(_TRANSCRIPTION.search(text or ""))


@dataclass
class LongAudioPlan:
    """A request on a long clip: the conversation, where the clip sits, the decoded clip and its windows."""

    messages: list[dict]
    audio_part: int  # index of the clip in the last message's content
    clip: AudioClip
    windows: list[Window]
    transcribe_first: bool  # transcribe the windows, then answer the prompt over the transcript
    warnings: list[str] = field(default_factory=list)

    def window_clip(self, window: Window) -> dict:
        """The audio part holding one window of the clip."""
        return {"type": "audio", "audio": {"array": self.clip.samples[window.start : window.end], "sampling_rate": SAMPLE_RATE}}

    def window_messages(self, window: Window) -> list[dict]:
        """The request for one window: the conversation with that window as the clip (or a bare transcription turn)."""
        if self.transcribe_first:
            return [{"role": "user", "content": [self.window_clip(window), {"type": "text", "text": TRANSCRIBE_INSTRUCTION}]}]
        content = list(self.messages[-1]["content"])
        content[self.audio_part] = self.window_clip(window)
        return [*self.messages[:-1], {"role": "user", "content": content}]

    def answer_messages(self, transcript: str) -> list[dict]:
        """The user's turn with the clip replaced by its transcript, for the answer."""
        content = list(self.messages[-1]["content"])
        words = f"Transcript of the attached audio ({self.clip.seconds:.0f} s):\n{transcript}"
        content[self.audio_part] = {"type": "text", "text": words}
        return [*self.messages[:-1], {"role": "user", "content": content}]


def plan_long_audio(messages: Any, mode: str, policy: MediaPolicy, has_audio: bool = True) -> tuple[Any, LongAudioPlan | None]:
    """(messages, plan): a plan when the request is answered by windows, else None and the messages to send
    as they are (with the last turn's clip already decoded when it was decoded to find its length)."""
    if mode == "truncate" or not has_audio:
        return messages, None
    messages = normalize_messages(messages)
    content = messages[-1]["content"]
    audio_part = next((i for i, part in enumerate(content) if part["type"] == "audio"), None)
    if audio_part is None:
        return messages, None
    prompt = " ".join(part["text"] for part in content if part["type"] == "text")
    windowed = is_transcription_prompt(prompt)
    if not windowed and mode != "transcribe_then_answer":
        return messages, None
    clip = read_audio(media_payload(content[audio_part], "audio"), policy, max_seconds=policy.max_audio_seconds)
    if clip.seconds <= MAX_AUDIO_SECONDS and not clip.cut:  # short after all: send it decoded, as one clip
        content = list(content)
        content[audio_part] = {"type": "audio", "audio": {"array": clip.samples, "sampling_rate": SAMPLE_RATE}}
        return [*messages[:-1], {"role": "user", "content": content}], None
    warnings = [cut_warning(clip, policy.max_audio_seconds)] if clip.cut else []
    return messages, LongAudioPlan(messages, audio_part, clip, plan_windows(clip.samples), not windowed, warnings)


class WindowedStream:
    """One reply over a long clip, made of one ChatStream per window (plus the answer with transcribe-first).

    Text arrives after each window, held back by SEAM_WORDS words that the next seam may still
    change; the answer of transcribe-first streams token by token. `reply` sums the windows'
    tokens and times and says how many windows were used.
    """

    def __init__(self, plan: LongAudioPlan, start: StartWindow, started: float):
        self.plan = plan
        self.start = start
        self.started = started
        self._cancel = threading.Event()
        self._replies: list[Any] = []
        self.reply = None
        self.transcript: str | None = None
        self._current = start(plan.window_messages(plan.windows[0]), started)  # bad input fails here, at once

    def cancel(self) -> None:
        """Stop the window (or answer) being generated; no further window starts."""
        self._cancel.set()
        if self._current is not None:
            self._current.cancel()

    def _run(self, messages: list[dict] | None) -> Iterator[str]:
        stream = self._current if messages is None else self.start(messages, time.perf_counter())
        self._current = stream
        if self._cancel.is_set():
            stream.cancel()
        try:
            yield from stream
        except GeneratorExit:
            stream.cancel()
            raise
        self._replies.append(stream.reply)

    def _windows(self) -> Iterator[str]:
        """Each window's text stitched on; yields the part no later seam can change."""
        words: list[str] = []
        shown = 0
        for index, window in enumerate(self.plan.windows):
            if index and self._cancel.is_set():
                break
            text = "".join(self._run(None if index == 0 else self.plan.window_messages(window)))
            words = merge(words, text.split(), bool(index and self.plan.windows[index - 1].pause_cut))
            last = index == len(self.plan.windows) - 1
            stable = len(words) if last else len(words) - SEAM_WORDS
            if stable > shown:
                yield (" " if shown else "") + " ".join(words[shown:stable])
                shown = stable
        if shown < len(words):
            yield (" " if shown else "") + " ".join(words[shown:])
        self.transcript = " ".join(words)

    def __iter__(self) -> Iterator[str]:
        if not self.plan.transcribe_first:
            yield from self._windows()
        else:
            for _ in self._windows():
                pass  # the transcript is the answer's material, not the reply
            if not self._cancel.is_set():
                yield from self._run(self.plan.answer_messages(self.transcript))
        self._finish()

    def _finish(self) -> None:
        replies = self._replies
        first, last = replies[0], replies[-1]
        decode_tokens = sum(max(r.new_tokens - 1, 0) for r in replies)
        decode_s = sum((r.new_tokens - 1) / r.tokens_per_s for r in replies if r.tokens_per_s > 0)
        windows = min(len(replies), len(self.plan.windows))
        reasons = {r.finish_reason for r in replies}
        other_audio = max(0.0, first.audio_seconds - self.plan.windows[0].seconds)  # earlier turns' clips
        warnings = list(self.plan.warnings)
        for reply in replies:
            warnings += [w for w in reply.warnings if w not in warnings]
        answer = self.plan.transcribe_first and len(replies) > windows
        self.reply = replace(
            last,
            text=last.text if answer else self.transcript,
            prompt_tokens=sum(r.prompt_tokens for r in replies),
            new_tokens=sum(r.new_tokens for r in replies),
            ttft_s=first.ttft_s,
            tokens_per_s=decode_tokens / decode_s if decode_s > 0 else 0.0,
            total_s=time.perf_counter() - self.started,
            finish_reason="cancelled" if self._cancel.is_set() else "length" if "length" in reasons else "stop",
            warnings=warnings,
            video_frames=first.video_frames,
            audio_seconds=round(self.plan.clip.seconds + other_audio, 2),
            audio_windows=windows,
            transcript=self.transcript if self.plan.transcribe_first else None,
        )

    def result(self):
        """Consume the rest of the stream and return the reply."""
        if self.reply is None:
            for _ in self:
                pass
        return self.reply
