"""From chat messages to the exact model inputs: validation, media decoding, and tokenization that
cannot be forged.

The checkpoint's own chat template lays out the turns. User and system text is swapped for
per-request sentinels before the template runs and tokenized afterwards with special-token
matching off, so text such as ``<start_of_turn>`` or ``<image_soft_token>`` stays ordinary text and
can never open a turn or a media slot. Only the template's own markup and the processor's media
sequences produce special token ids.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any

import torch

from .errors import ContextOverflowError, MessageError
from .history import FittedConversation, count_media, fit_conversation, split_system
from .media import MediaNotes, MediaPolicy
from .turn_media import decode_media

ROLES = ("system", "user", "assistant")
PART_TYPES = ("text", "image", "audio", "video")


@dataclass
class PreparedPrompt:
    """Model inputs for one request and what went into them."""

    inputs: dict[str, torch.Tensor]
    prompt_tokens: int
    num_images: int
    num_audio: int
    warnings: list[str] = field(default_factory=list)
    dropped_turns: int = 0  # oldest user turns (with their replies) left out to fit the context
    max_new_tokens: int | None = None  # what fits after the prompt (the request's, or lowered when clamped)
    video_frames: int = 0  # of the images, those sampled from videos
    audio_seconds: float = 0.0  # seconds of audio in the prompt, videos' sound included


# -- validation ------------------------------------------------------------------------------------


def _parts(message: dict, index: int) -> list[dict]:
    content = message.get("content")
    if isinstance(content, str):
        _check_unicode(content, index)
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise MessageError(f"message {index}: content must be a string or a list of parts, got {type(content).__name__}")
    for part in content:
        if not isinstance(part, dict) or part.get("type") not in PART_TYPES:
            shown = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise MessageError(f"message {index}: unknown content part {shown!r}; parts are {', '.join(PART_TYPES)}")
        if part["type"] == "text" and not isinstance(part.get("text"), str):
            raise MessageError(f"message {index}: a text part needs a 'text' string")
        if part["type"] == "text":
            _check_unicode(part["text"], index)
    return content


def _check_unicode(text: str, index: int) -> None:
    """Text the tokenizer can take: no lone surrogates (JSON can carry "\\ud800"; UTF-8 cannot)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise MessageError(
            f"message {index}: the text holds {text[err.start:err.end]!r} at character {err.start}, a lone surrogate, "
            "which is not valid Unicode (as left by bytes that are not UTF-8); retype or re-paste it as UTF-8 text"
        ) from None


def normalize_messages(messages: Any) -> list[dict]:
    """Check roles, alternation and content; return messages whose content is always a list of parts."""
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    if not isinstance(messages, list) or not messages:
        raise MessageError("no messages: send at least one user message")
    normalized = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise MessageError(f"message {index}: role must be one of {', '.join(ROLES)}")
        normalized.append({"role": message["role"], "content": _parts(message, index)})
    turns = normalized[1:] if normalized[0]["role"] == "system" else normalized
    if normalized[0]["role"] == "system" and any(p["type"] != "text" for p in normalized[0]["content"]):
        raise MessageError("the system prompt can only hold text")
    for index, message in enumerate(turns):
        expected = "user" if index % 2 == 0 else "assistant"
        if message["role"] != expected:
            raise MessageError(f"turns must alternate user/assistant; turn {index} is {message['role']!r}, expected {expected!r}")
    if not turns or turns[-1]["role"] != "user":
        raise MessageError("the last message must come from the user")
    for message in turns:
        if message["role"] == "user" and sum(p["type"] == "audio" for p in message["content"]) > 1:
            raise MessageError("one user turn can carry at most one audio clip; send the others in separate turns")
    last = turns[-1]["content"]
    if not any(p["type"] != "text" or p["text"].strip() for p in last):
        raise MessageError("the message is empty: type some text or attach an image, audio clip or video")
    return normalized


# -- tokenization --------------------------------------------------------------------------------


def _render_with_sentinels(processor, messages: list[dict]) -> tuple[str, dict[str, str], re.Pattern]:
    nonce = secrets.token_hex(8)
    texts: dict[str, str] = {}
    templated = []
    for message in messages:
        parts = []
        for part in message["content"]:
            if part["type"] == "text":
                key = f"\ue000{nonce}:{len(texts)}\ue001"
                # The template trims user/assistant text but not the system prompt; mirror that exactly.
                texts[key] = part["text"] if message["role"] == "system" else part["text"].strip()
                parts.append({"type": "text", "text": key})
            else:
                parts.append(part)
        templated.append({"role": message["role"], "content": parts})
    rendered = processor.apply_chat_template(templated, tokenize=False, add_generation_prompt=True)
    return rendered, texts, re.compile(f"(\ue000{nonce}:\\d+\ue001)")


def _expand_media(processor, markup: str) -> str:
    return markup.replace(processor.image_token, processor.full_image_sequence).replace(
        processor.audio_token, processor.full_audio_sequence
    )


def _encode_segments(processor, pieces: list[str], texts: dict[str, str]) -> list[int]:
    """Template markup with special tokens on, user text with them off: nothing in user text can become special."""
    tokenizer = processor.tokenizer
    ids: list[int] = []
    for piece in pieces:
        if piece in texts:
            ids += tokenizer(texts[piece], add_special_tokens=False, split_special_tokens=True)["input_ids"]
        elif piece:
            ids += tokenizer(_expand_media(processor, piece), add_special_tokens=False)["input_ids"]
    return ids


def encode_conversation(processor, messages: list[dict]) -> list[int]:
    """Token ids of a conversation (media parts as placeholders, expanded to the full media sequences).

    The whole prompt is tokenized at once, exactly as the stock processor does, and the result is
    kept only if no added (special) token overlaps user text; otherwise user text is tokenized
    apart with special-token matching off.
    """
    tokenizer = processor.tokenizer
    rendered, texts, sentinel = _render_with_sentinels(processor, messages)
    pieces = sentinel.split(rendered)
    joined: list[str] = []
    user_spans: list[tuple[int, int]] = []
    position = 0
    for piece in pieces:
        text = texts[piece] if piece in texts else _expand_media(processor, piece)
        if piece in texts:
            user_spans.append((position, position + len(text)))
        joined.append(text)
        position += len(text)
    encoded = tokenizer("".join(joined), add_special_tokens=False, return_offsets_mapping=True)
    added = set(tokenizer.added_tokens_decoder)
    forged = any(
        token in added and any(start < span_end and span_start < end for span_start, span_end in user_spans)
        for token, (start, end) in zip(encoded["input_ids"], encoded["offset_mapping"])
    )
    return _encode_segments(processor, pieces, texts) if forged else list(encoded["input_ids"])


def _check_slots(ids: list[int], processor, num_images: int, num_audio: int) -> None:
    image_slots = ids.count(processor.image_token_id)
    audio_slots = ids.count(processor.audio_token_id)
    if image_slots != num_images * processor.image_seq_length or audio_slots != num_audio * processor.audio_seq_length:
        raise MessageError(
            f"internal check failed: {image_slots} image / {audio_slots} audio slots for {num_images} images / {num_audio} clips"
        )


def _context_error(loaded, tokens: int, max_new_tokens: int, images: int, audios: int, alone: bool = False) -> ContextOverflowError:
    processor = loaded.processor
    media = f" ({images} images x {processor.image_seq_length} tokens, {audios} clips x {processor.audio_seq_length})"
    return ContextOverflowError(
        f"the prompt needs {tokens} tokens{media if images or audios else ''} plus {max_new_tokens} new "
        f"token{'s' if max_new_tokens != 1 else ''}, over the model's context of {loaded.context_length}"
        f"{' even with every earlier turn left out' if alone else ''}; send fewer images or video frames (each costs "
        f"{processor.image_seq_length} tokens){', shorten the text, or lower max_new_tokens' if max_new_tokens > 1 else ' or shorten the text'}"
    )


def _check_new_tokens(loaded, max_new_tokens: int) -> None:
    """The reply alone must leave room for a prompt: checked first, so no message says 'needs 0 tokens plus 10**9'."""
    if max_new_tokens >= loaded.context_length:
        raise ContextOverflowError(
            f"max_new_tokens={max_new_tokens} leaves no room for the prompt in the model's context of "
            f"{loaded.context_length} tokens; lower max_new_tokens (a short prompt needs a few dozen tokens)"
        )


def _as_slots(messages: list[dict], video_images: int, video_audio: bool) -> list[dict]:
    """Messages with each media part as the slots it will take, nothing decoded: a video as `video_images` images
    and, with `video_audio`, as the turn's one audio clip when the turn has none (counted as if it had sound)."""
    slotted = []
    for message in messages:
        kinds = [part["type"] for part in message["content"]]
        parts = []
        for part in message["content"]:
            if part["type"] == "video":
                parts += [{"type": "image"}] * video_images
            else:
                parts.append(part if part["type"] == "text" else {"type": part["type"]})
        if video_audio and "video" in kinds and "audio" not in kinds:
            parts.append({"type": "audio"})
        slotted.append({"role": message["role"], "content": parts})
    return slotted


def _fit_context(loaded, messages: list[dict], max_new_tokens: int, policy: MediaPolicy, video_sound: bool) -> FittedConversation:
    """Leave out the oldest turns until the rest fits (videos counted at their most frames); refuse a newest turn that
    cannot fit alone even with each video counted as one frame. Nothing is decoded here."""
    processor = loaded.processor
    room = loaded.context_length - max_new_tokens
    counted: dict[tuple[int, int], int] = {}  # (messages kept, frames per video) -> tokens

    def tokens(kept: list[dict], video_images: int) -> int:
        key = (len(kept), video_images)
        if key not in counted:
            counted[key] = len(encode_conversation(processor, _as_slots(kept, video_images, video_sound and loaded.has_audio)))
        return counted[key]

    fitted = fit_conversation(messages, lambda kept: tokens(kept, policy.max_video_frames) <= room)
    if tokens(fitted.messages, policy.max_video_frames) > room and tokens(fitted.messages, 1) > room:
        media = count_media(split_system(fitted.messages)[1][-1:])
        raise _context_error(
            loaded, tokens(fitted.messages, 1), max_new_tokens, media["image"] + media["video"], media["audio"], alone=fitted.dropped_turns > 0
        )
    return fitted


def _fit_with_reply_room(
    loaded, messages: list[dict], wanted: int, policy: MediaPolicy, video_sound: bool
) -> tuple[FittedConversation, int]:
    """For a clamped request: fit the conversation keeping room for a reply of min(wanted, a quarter of the context)
    tokens, or, when the newest turn cannot leave that much, for one token (the reply is then clamped, not refused).
    Returns the fitted conversation and the reply room it was fitted for."""
    room = min(wanted, max(1, loaded.context_length // 4))
    try:
        return _fit_context(loaded, messages, room, policy, video_sound), room
    except ContextOverflowError:
        if room == 1:
            raise
        return _fit_context(loaded, messages, 1, policy, video_sound), 1


def prepare_prompt(
    loaded, messages: Any, max_new_tokens: int, policy: MediaPolicy | None = None, video_sound: bool = True,
    clamp: bool = False,
) -> PreparedPrompt:
    """Validate, decode media (with `video_sound`, videos' sound too) and tokenize a conversation for `loaded`;
    raise typed errors for bad input.

    A conversation longer than the context loses its oldest turns first (with a warning). With `clamp`,
    a `max_new_tokens` larger than what the context leaves after the prompt is lowered to fit (with a
    warning) instead of refused, and history is trimmed only to keep a reasonable reply room; a newest
    turn that leaves no room at all is still refused.
    """
    policy = policy or MediaPolicy()
    processor = loaded.processor
    messages = normalize_messages(messages)
    wanted = max_new_tokens
    if clamp:
        fitted, max_new_tokens = _fit_with_reply_room(loaded, messages, wanted, policy, video_sound)
    else:
        _check_new_tokens(loaded, max_new_tokens)
        fitted = _fit_context(loaded, messages, max_new_tokens, policy, video_sound)
    notes = MediaNotes()
    trimmed = fitted.warning(loaded.context_length)
    if trimmed:
        notes.warnings.append(trimmed)
    media = decode_media(fitted.messages, policy, notes, loaded.has_vision, loaded.has_audio, video_sound)
    images, audios = media.images, media.audios
    ids = encode_conversation(processor, media.messages)
    _check_slots(ids, processor, len(images), len(audios))
    if len(ids) + max_new_tokens > loaded.context_length:
        raise _context_error(loaded, len(ids), max_new_tokens, len(images), len(audios))
    fits = min(wanted, loaded.context_length - len(ids)) if clamp else wanted
    if fits < wanted:
        notes.warnings.append(
            f"max new tokens lowered from {wanted} to {fits}: the prompt takes {len(ids)} of the model's {loaded.context_length} tokens"
        )
    inputs: dict[str, torch.Tensor] = {
        "input_ids": torch.tensor([ids], dtype=torch.long),
        "attention_mask": torch.ones(1, len(ids), dtype=torch.long),
    }
    if images:
        inputs["pixel_values"] = processor.image_processor(images, return_tensors="pt")["pixel_values"]
    if audios:
        features = processor.feature_extractor(audios, return_tensors="pt")
        inputs["input_features"] = features["input_features"]
        inputs["input_features_mask"] = features["input_features_mask"]
    return PreparedPrompt(
        inputs, len(ids), len(images), len(audios), notes.warnings, fitted.dropped_turns, fits, media.video_frames, media.audio_seconds
    )
