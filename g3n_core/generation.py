"""Chat generation: streamed, cancellable, timed.

`stream_chat` validates and prepares the request in the caller's thread (so bad input raises at
once), then generates in a worker thread under the model's lock. Iterating the stream yields text
deltas; `cancel()` stops generation at the next token and leaves the model ready for the next
request. Every reply reports prompt tokens, new tokens, time to first token and decode tokens/s.
The deltas add up to the tokenizer's decode of the whole reply, invalid byte sequences included
(`g3n_core.detokenize`); `ChatReply.text` is that text without surrounding whitespace.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import queue
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import Field, asdict, dataclass, field, fields, replace
from typing import Any

import torch
from transformers import GenerationConfig, StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from .detokenize import Detokenizer
from .errors import NumericalError, SettingsError
from .long_audio import LONG_AUDIO_MODES, WindowedStream, plan_long_audio
from .media import MediaPolicy
from .prompt import PreparedPrompt, prepare_prompt

_END = object()  # the streamer's end-of-reply marker


def _check_real(name: str, value: Any) -> None:
    """A finite real number (not a bool, a string, NaN or an infinity)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise SettingsError(f"{name}={value!r} must be a finite number")


def _check_whole(name: str, value: Any) -> None:
    """A whole number given as an int (not a bool, a fraction or a string)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise SettingsError(f"{name}={value!r} must be a whole number")


def settings_from_values(values: Mapping[str, Any]) -> GenerationSettings:
    """GenerationSettings from loosely typed values by field name (sliders, JSON; unknown names ignored): integral
    floats become ints where a whole number goes, temperature 0 means greedy decoding; NaN, infinities, fractions
    where a whole number goes, and anything not a number where one goes are a SettingsError."""
    types = {f.name: str(f.type) for f in user_settings()}
    return GenerationSettings(**{name: _whole(value, name) if types[name] == "int" else value for name, value in values.items() if name in types})


def _whole(value: Any, name: str) -> Any:
    """An integral float as an int (sliders send 64.0); anything else unchanged, for GenerationSettings to check."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, float):
        raise SettingsError(f"{name}={value!r} must be a whole number")
    return value
def setting(help: str, low: float, high: float | None, step: float) -> dict[str, Any]:  # noqa: A002 - argparse's word
    """A GenerationSettings field's metadata: one line of help, and the range and step a control offers."""
    return {"help": help, "low": low, "high": high, "step": step}


def option(help: str, choices: tuple[str, ...] | None = None) -> dict[str, Any]:  # noqa: A002 - argparse's word
    """Metadata of a GenerationSettings field that is a choice (`choices`) or an on/off switch (a bool field)."""
    return {"help": help, "choices": choices}


@dataclass(frozen=True)
class GenerationSettings:
    """Sampling parameters of one request: the one set of defaults the CLI, the app's sliders and its /chat API use.

    Greedy by default (temperature 0), so runs repeat exactly. Each user-facing field carries its help
    and range in `setting(...)` metadata (its choices, or on/off, in `option(...)`); `user_settings()`
    lists them for the command line and the app.
    """

    max_new_tokens: int = field(default=256, metadata=setting(
        "most new tokens in the reply; clamped, with a note, to what the context leaves after the prompt", 1, None, 1))
    temperature: float = field(default=0.0, metadata=setting("0 = greedy (repeatable); above 0 samples at this temperature", 0.0, 2.0, 0.05))
    top_p: float = field(default=0.95, metadata=setting("sample from the smallest set of tokens holding this probability", 0.01, 1.0, 0.01))
    top_k: int = field(default=64, metadata=setting("sample among the k most likely tokens; 0 = off", 0, 200, 1))
    repetition_penalty: float = field(default=1.0, metadata=setting("above 1 discourages repeating tokens", 0.5, 2.0, 0.05))
    seed: int = field(default=0, metadata=setting("seed of the sampler (same seed, same reply)", 0, None, 1))
    long_audio: str = field(default="chunk", metadata=option(
        "clips over 30 s: chunk answers transcription and translation prompts by windows of <= 30 s (others hear the first "
        "30 s); transcribe_then_answer transcribes by windows, then answers any prompt over the transcript; truncate keeps "
        "the first 30 s", LONG_AUDIO_MODES))
    video_sound: bool = field(default=True, metadata=option("send a video's sound with its frames, as the turn's audio clip"))
    do_sample: bool | None = None  # derived: sample when temperature > 0 (give False to decode greedily at any temperature)

    def __post_init__(self) -> None:
        for name in ("max_new_tokens", "top_k", "seed"):
            _check_whole(name, getattr(self, name))
        for name in ("temperature", "top_p", "repetition_penalty"):
            _check_real(name, getattr(self, name))
        if self.do_sample is None:
            object.__setattr__(self, "do_sample", self.temperature > 0)
        if not isinstance(self.do_sample, bool):
            raise SettingsError(f"do_sample={self.do_sample!r} must be true or false")
        checks = [
            ("max_new_tokens", self.max_new_tokens >= 1, "a whole number >= 1"),
            ("temperature", self.temperature > 0 if self.do_sample else self.temperature >= 0, "> 0 when sampling (do_sample=True); 0 means greedy"),
            ("top_p", 0 < self.top_p <= 1, "in (0, 1]"),
            ("top_k", self.top_k >= 0, "a whole number >= 0 (0 turns it off)"),
            ("repetition_penalty", self.repetition_penalty > 0, "> 0"),
            ("seed", 0 <= self.seed < 2**63, "a whole number from 0 to 2**63 - 1"),
            ("long_audio", self.long_audio in LONG_AUDIO_MODES, f"one of {', '.join(LONG_AUDIO_MODES)}"),
            ("video_sound", isinstance(self.video_sound, bool), "true or false"),
        ]
        for name, ok, rule in checks:
            if not ok:
                raise SettingsError(f"{name}={getattr(self, name)!r} must be {rule}")

    def generation_config(self, tokenizer, end_of_turn_id: int) -> GenerationConfig:
        """A fresh GenerationConfig (the checkpoint's sampling defaults are not inherited)."""
        config = GenerationConfig(
            max_new_tokens=self.max_new_tokens,
            do_sample=self.do_sample,
            repetition_penalty=self.repetition_penalty,
            eos_token_id=[tokenizer.eos_token_id, end_of_turn_id],
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
        )
        if self.do_sample:
            config.temperature, config.top_p, config.top_k = self.temperature, self.top_p, self.top_k
        return config


def user_settings() -> tuple[Field, ...]:
    """The GenerationSettings fields a person sets (those with `setting` metadata), in order."""
    return tuple(f for f in fields(GenerationSettings) if "help" in f.metadata)


@dataclass
class ChatReply:
    """The finished reply and its measurements."""

    text: str
    prompt_tokens: int
    new_tokens: int
    ttft_s: float  # request start to first new token
    tokens_per_s: float  # decode speed: tokens after the first, over the time after the first
    total_s: float
    finish_reason: str  # "stop", "length" or "cancelled"
    warnings: list[str] = field(default_factory=list)
    dropped_turns: int = 0  # oldest user turns (with their replies) left out to fit the context
    video_frames: int = 0  # frames sampled from videos in the prompt
    audio_seconds: float = 0.0  # seconds of audio heard (clips and videos' sound; all windows of a long clip)
    audio_windows: int = 0  # windows a long clip was answered in (0: none was windowed)
    transcript: str | None = None  # the stitched transcript the answer was given over (long_audio=transcribe_then_answer)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    def media_parts(self) -> list[str]:
        """What the model saw and heard, for stats lines: ['8 video frames', '95.0 s of audio in 4 windows']."""
        parts = [f"{self.video_frames} video frames"] if self.video_frames else []
        if self.audio_seconds:
            windows = f" in {self.audio_windows} windows" if self.audio_windows else ""
            parts.append(f"{self.audio_seconds:.1f} s of audio{windows}")
        return parts


class _TimedStreamer(BaseStreamer):
    """Receives generate's tokens: records each one's id and arrival time, and queues the text deltas the
    Detokenizer settles (so the deltas add up to the whole reply's decode, byte-fallback runs included)."""

    def __init__(self, tokenizer):
        self.detokenizer = Detokenizer(tokenizer)
        self.token_times: list[float] = []
        self._prompt_seen = False
        self._queue: queue.Queue = queue.Queue()

    @property
    def token_ids(self) -> list[int]:
        """The new tokens so far."""
        return self.detokenizer.ids

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:  # generate's first put is the prompt
            self._prompt_seen = True
            return
        ids = value.reshape(-1).tolist()
        self.token_times += [time.perf_counter()] * len(ids)
        piece = self.detokenizer.push(ids)
        if piece:
            self._queue.put(piece)

    def end(self) -> None:
        piece = self.detokenizer.finish()
        if piece:
            self._queue.put(piece)
        self._queue.put(_END)

    def __iter__(self) -> Iterator[str]:
        while (piece := self._queue.get()) is not _END:
            yield piece


class _CancelCriteria(StoppingCriteria):
    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


def check_finite_logits(logits: torch.Tensor, dtype: str) -> None:
    """Raise NumericalError when logits hold inf or NaN, saying what to do (float16 overflows on real Gemma 3n weights)."""
    if bool(torch.isfinite(logits).all()):
        return
    bad = "NaN" if bool(torch.isnan(logits).any()) else "inf"
    cause = "float16 overflows on real Gemma 3n weights (activations reach inf)" if dtype == "float16" else "the weights or inputs overflow"
    raise NumericalError(f"the model produced {bad} logits in {dtype}: {cause}. Use dtype bfloat16, or float32 where bfloat16 is not supported")


@contextlib.contextmanager
def checking_logits(model: torch.nn.Module, dtype: str) -> Iterator[None]:
    """Check every step's raw logits (the LM head's output, before softcapping and sampling) while generating."""
    head = model.get_output_embeddings()
    hook = head.register_forward_hook(lambda module, args, output: check_finite_logits(output, dtype))
    try:
        yield
    finally:
        hook.remove()


def end_of_turn_id(tokenizer) -> int:
    """Id of <end_of_turn>, which ends a model turn in Gemma chat."""
    return tokenizer.convert_tokens_to_ids("<end_of_turn>")


def model_inputs(loaded, prepared: PreparedPrompt) -> dict[str, torch.Tensor]:
    """The prepared tensors on the model's device, floating ones in the model's dtype."""
    dtype = loaded.variant.torch_dtype
    device = loaded.device
    return {k: v.to(device=device, dtype=dtype if v.is_floating_point() else v.dtype) for k, v in prepared.inputs.items()}


class ChatStream:
    """An in-flight reply: iterate for text deltas, `cancel()` to stop, `reply` once finished."""

    def __init__(self, loaded, prepared: PreparedPrompt, settings: GenerationSettings, started: float):
        self.loaded = loaded
        self.prepared = prepared
        self.early_warnings = list(prepared.warnings)  # known before the first token (the reply's warnings repeat them)
        self.settings = settings
        self.started = started
        self._cancel = threading.Event()
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._streamer = _TimedStreamer(loaded.tokenizer)
        self._pieces: list[str] = []
        self.reply: ChatReply | None = None
        self._thread = threading.Thread(target=self._run, name="g3n-generate", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        loaded = self.loaded
        eot = end_of_turn_id(loaded.tokenizer)
        try:
            with loaded.lock, torch.inference_mode(), checking_logits(loaded.model, loaded.variant.dtype):
                torch.manual_seed(self.settings.seed)
                loaded.model.generate(
                    **model_inputs(loaded, self.prepared),
                    generation_config=self.settings.generation_config(loaded.tokenizer, eot),
                    streamer=self._streamer,
                    stopping_criteria=StoppingCriteriaList([_CancelCriteria(self._cancel)]),
                    **loaded.extras.get("generate_kwargs", {}),
                )
        except BaseException as err:  # noqa: BLE001 - surfaced to the consumer in __iter__
            self._error = err
            self._streamer.end()
        finally:
            self._done.set()

    def cancel(self) -> None:
        """Stop after the token being generated; the model stays ready for the next request."""
        self._cancel.set()

    def __iter__(self):
        try:
            for piece in self._streamer:
                self._pieces.append(piece)
                yield piece
        except GeneratorExit:
            self.cancel()  # the consumer went away (a closed page): free the model at once
            raise
        self._thread.join()
        if self._error is not None:
            raise self._error
        self._finish()

    def _finish(self) -> None:
        streamer = self._streamer
        ids = streamer.token_ids
        times = streamer.token_times
        eot = end_of_turn_id(self.loaded.tokenizer)
        stops = {self.loaded.tokenizer.eos_token_id, eot}
        if self._cancel.is_set() and not (ids and ids[-1] in stops):
            reason = "cancelled"
        elif ids and ids[-1] in stops:
            reason = "stop"
        else:
            reason = "length"
        decode_s = times[-1] - times[0] if len(times) > 1 else 0.0
        self.reply = ChatReply(
            text="".join(self._pieces).strip(),
            prompt_tokens=self.prepared.prompt_tokens,
            new_tokens=len(ids),
            ttft_s=(times[0] - self.started) if times else 0.0,
            tokens_per_s=(len(ids) - 1) / decode_s if decode_s > 0 else 0.0,
            total_s=time.perf_counter() - self.started,
            finish_reason=reason,
            warnings=[*self.prepared.warnings, *self.loaded.variant.warnings],
            dropped_turns=self.prepared.dropped_turns,
            video_frames=self.prepared.video_frames,
            audio_seconds=round(self.prepared.audio_seconds, 2),
        )

    def result(self) -> ChatReply:
        """Consume the rest of the stream and return the reply."""
        if self.reply is None:
            for _ in self:
                pass
        return self.reply


def _start(loaded, messages: Any, settings: GenerationSettings, policy: MediaPolicy, started: float) -> ChatStream:
    prepared = prepare_prompt(loaded, messages, settings.max_new_tokens, policy, settings.video_sound, clamp=True)
    return ChatStream(loaded, prepared, replace(settings, max_new_tokens=prepared.max_new_tokens), started)


def stream_chat(
    loaded, messages: Any, settings: GenerationSettings | None = None, policy: MediaPolicy | None = None
) -> ChatStream | WindowedStream:
    """Start a streamed reply; raises a typed G3nError at once for bad input.

    A max_new_tokens over what the context leaves after the prompt is lowered to fit, and the
    reply's warnings say so. A clip over 30 s in the last turn, with `settings.long_audio` other
    than truncate and a prompt that asks for its transcript or translation (or any prompt with
    transcribe_then_answer), is answered window by window through this same path
    (`g3n_core.long_audio.WindowedStream`).
    """
    settings = settings or GenerationSettings()
    policy = policy or MediaPolicy()
    started = time.perf_counter()
    messages, plan = plan_long_audio(messages, settings.long_audio, policy, loaded.has_audio)
    if plan is None:
        return _start(loaded, messages, settings, policy, started)
    return WindowedStream(plan, lambda window_messages, begun: _start(loaded, window_messages, settings, policy, begun), started)


def chat(loaded, messages: Any, settings: GenerationSettings | None = None, policy: MediaPolicy | None = None) -> ChatReply:
    """Generate a whole reply."""
    return stream_chat(loaded, messages, settings, policy).result()


__all__ = ["ChatReply", "ChatStream", "GenerationSettings", "chat", "settings_from_values", "stream_chat"]
