"""Chat on the tiny model: every modality, history, streaming, cancellation, measurements."""

from __future__ import annotations

import numpy as np
from PIL import Image

from g3n_core import GenerationSettings, chat, stream_chat

SHORT = GenerationSettings(max_new_tokens=6)


def _user(*parts):
    return [{"role": "user", "content": list(parts)}]


def _check_reply(reply, max_new_tokens=6):
    assert 1 <= reply.new_tokens <= max_new_tokens
    assert reply.prompt_tokens > 0
    assert reply.ttft_s > 0
    assert reply.finish_reason in ("stop", "length")
    if reply.new_tokens > 1:
        assert reply.tokens_per_s > 0


def test_text_reply_reports_measurements(tiny):
    reply = chat(tiny, "Hello, who are you?", SHORT)
    _check_reply(reply)
    assert reply.finish_reason == "length" or reply.new_tokens < 6


def test_two_images_take_two_image_slots(tiny, media):
    reply = chat(tiny, _user({"type": "image", "image": str(media["image"])}, {"type": "image", "image": str(media["image2"])}, {"type": "text", "text": "Compare"}), SHORT)
    _check_reply(reply)
    text_only = chat(tiny, _user({"type": "text", "text": "Compare"}), SHORT)
    per_image = tiny.processor.image_seq_length
    assert reply.prompt_tokens >= text_only.prompt_tokens + 2 * per_image


def test_images_as_pil_and_numpy(tiny):
    pil = Image.new("RGB", (32, 32), "green")
    array = np.zeros((20, 30, 3), dtype=np.uint8)
    reply = chat(tiny, _user({"type": "image", "image": pil}, {"type": "image", "image": array}, {"type": "text", "text": "?"}), SHORT)
    _check_reply(reply)


def test_audio_file_and_array(tiny, media):
    _check_reply(chat(tiny, _user({"type": "audio", "audio": str(media["audio"])}, {"type": "text", "text": "Transcribe"}), SHORT))
    stereo = chat(tiny, _user({"type": "audio", "audio": str(media["audio_44k_stereo"])}, {"type": "text", "text": "?"}), SHORT)
    _check_reply(stereo)
    samples = np.zeros(8000, dtype=np.float32)
    _check_reply(chat(tiny, _user({"type": "audio", "audio": samples}, {"type": "text", "text": "?"}), SHORT))


def test_video_becomes_bounded_frames(tiny, media):
    from g3n_core import MediaPolicy

    reply = chat(tiny, _user({"type": "video", "video": str(media["video"])}, {"type": "text", "text": "What happens?"}), SHORT, MediaPolicy(max_video_frames=4))
    _check_reply(reply)
    assert any("4 of 12 frames" in w for w in reply.warnings)
    assert reply.prompt_tokens >= 4 * tiny.processor.image_seq_length


def test_history_with_media_and_system_prompt(tiny, media):
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": [{"type": "image", "image": str(media["image"])}, {"type": "text", "text": "What is this?"}]},
        {"role": "assistant", "content": "A red circle."},
        {"role": "user", "content": [{"type": "audio", "audio": str(media["audio"])}, {"type": "text", "text": "And this?"}]},
    ]
    _check_reply(chat(tiny, messages, SHORT))


def test_greedy_is_repeatable_and_sampling_is_seeded(tiny):
    a = chat(tiny, "Repeat after me", GenerationSettings(max_new_tokens=8))
    b = chat(tiny, "Repeat after me", GenerationSettings(max_new_tokens=8))
    assert a.text == b.text
    s1 = chat(tiny, "Repeat", GenerationSettings(max_new_tokens=8, do_sample=True, temperature=1.5, top_k=50, top_p=0.9, seed=1))
    s2 = chat(tiny, "Repeat", GenerationSettings(max_new_tokens=8, do_sample=True, temperature=1.5, top_k=50, top_p=0.9, seed=1))
    assert s1.text == s2.text


def test_streaming_yields_pieces_that_add_up(tiny):
    stream = stream_chat(tiny, "Stream please", GenerationSettings(max_new_tokens=10))
    pieces = list(stream)
    assert stream.reply.text == "".join(pieces).strip()
    assert stream.reply.new_tokens == 10 or stream.reply.finish_reason == "stop"


def test_cancel_mid_stream_then_next_request_works(tiny):
    stream = stream_chat(tiny, "A long story", GenerationSettings(max_new_tokens=300))
    for i, _ in enumerate(stream):
        if i == 2:
            stream.cancel()
    assert stream.reply.finish_reason == "cancelled"
    assert stream.reply.new_tokens < 300
    _check_reply(chat(tiny, "Next request", SHORT))
