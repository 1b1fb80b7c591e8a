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

import numpy as np
import torch
from PIL import Image

from .errors import ContextOverflowError, MessageError
from .media import MediaNotes, MediaPolicy, load_audio, load_image, load_video_frames, media_payload

ROLES = ("system", "user", "assistant")
_SURROGATE = re.compile("[\ud800-\udfff]")
PART_TYPES = ("text", "image", "audio", "video")


@dataclass
class PreparedPrompt:
    """Model inputs for one request and what went into them."""

    inputs: dict[str, torch.Tensor]
    prompt_tokens: int
    num_images: int
    num_audio: int
    warnings: list[str] = field(default_factory=list)
    max_new_tokens: int | None = None  # what fits after the prompt (the request's, or lowered when clamped)


# -- validation ------------------------------------------------------------------------------------


def _parts(message: dict, index: int) -> list[dict]:
    content = message.get("content")
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise MessageError(f"message {index}: content must be a string or a list of parts, got {type(content).__name__}")
    for part in content:
        if not isinstance(part, dict) or part.get("type") not in PART_TYPES:
            shown = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise MessageError(f"message {index}: unknown content part {shown!r}; parts are {', '.join(PART_TYPES)}")
        if part["type"] == "text" and not isinstance(part.get("text"), str):
            raise MessageError(f"message {index}: a text part needs a 'text' string")
        if part["type"] == "text" and _SURROGATE.search(part["text"]):
            raise MessageError(
                f"message {index}: the text holds characters that are not valid Unicode (lone surrogates, as left by "
                "bytes that are not UTF-8); retype or re-paste it as UTF-8 text"
            )
    return content


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


# -- media ---------------------------------------------------------------------------------------


def _decode_media(messages: list[dict], policy: MediaPolicy, notes: MediaNotes, has_vision: bool, has_audio: bool):
    """Replace media parts by decoded objects; videos become image parts. Returns (messages, images, audios)."""
    images: list[Image.Image] = []
    audios: list[np.ndarray] = []
    decoded = []
    for message in messages:
        parts = []
        for part in message["content"]:
            kind = part["type"]
            if kind in ("image", "video") and not has_vision:
                raise MessageError(f"this model was loaded without the vision tower, so it cannot take a {kind}")
            if kind == "audio" and not has_audio:
                raise MessageError("this model was loaded without the audio tower, so it cannot take audio")
            if kind == "image":
                images.append(load_image(media_payload(part, "image"), policy))
                parts.append({"type": "image"})
            elif kind == "video":
                frames = load_video_frames(media_payload(part, "video"), policy, notes)
                images.extend(frames)
                parts.extend({"type": "image"} for _ in frames)
            elif kind == "audio":
                audios.append(load_audio(media_payload(part, "audio"), policy, notes))
                parts.append({"type": "audio"})
            else:
                parts.append(part)
        decoded.append({"role": message["role"], "content": parts})
    return decoded, images, audios


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


def _context_error(loaded, tokens: int, max_new_tokens: int, images: int, audios: int) -> ContextOverflowError:
    processor = loaded.processor
    media = f" ({images} images x {processor.image_seq_length} tokens, {audios} clips x {processor.audio_seq_length})"
    return ContextOverflowError(
        f"the prompt needs {tokens} tokens{media if images or audios else ''} plus {max_new_tokens} new "
        f"token{'s' if max_new_tokens != 1 else ''}, over the model's context of {loaded.context_length}; send fewer images "
        f"or video frames (each costs {processor.image_seq_length} tokens){', shorten the text, or lower max_new_tokens' if max_new_tokens > 1 else ' or shorten the text'}"
    )


def _precheck_context(loaded, messages: list[dict], max_new_tokens: int) -> None:
    """Fail before decoding any media when the media slots alone cannot fit (a video counts one frame here)."""
    kinds = [p["type"] for m in messages for p in m["content"]]
    images = kinds.count("image") + kinds.count("video")
    audios = kinds.count("audio")
    slots = images * loaded.processor.image_seq_length + audios * loaded.processor.audio_seq_length
    if slots + max_new_tokens > loaded.context_length:
        raise _context_error(loaded, slots, max_new_tokens, images, audios)


def prepare_prompt(
    loaded, messages: Any, max_new_tokens: int, policy: MediaPolicy | None = None, clamp: bool = False
) -> PreparedPrompt:
    """Validate, decode media and tokenize a conversation for `loaded`; raise typed errors for bad input.

    With `clamp`, a `max_new_tokens` larger than what the context leaves after the prompt is lowered
    to fit (with a warning) instead of refused; a prompt that leaves no room at all is still refused.
    """
    policy = policy or MediaPolicy()
    processor = loaded.processor
    messages = normalize_messages(messages)
    wanted = max_new_tokens
    max_new_tokens = 1 if clamp else max_new_tokens
    _precheck_context(loaded, messages, max_new_tokens)
    notes = MediaNotes()
    decoded, images, audios = _decode_media(messages, policy, notes, loaded.has_vision, loaded.has_audio)
    ids = encode_conversation(processor, decoded)
    _check_slots(ids, processor, len(images), len(audios))
    if len(ids) + max_new_tokens > loaded.context_length:
        raise _context_error(loaded, len(ids), max_new_tokens, len(images), len(audios))
    fits = min(wanted, loaded.context_length - len(ids))
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
    return PreparedPrompt(inputs, len(ids), len(images), len(audios), notes.warnings, fits)
