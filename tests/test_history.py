"""Long conversations keep answering: the oldest turns (and their media) are left out first, the reply says so."""

from __future__ import annotations

import numpy as np
import pytest

from g3n_core import ContextOverflowError, GenerationSettings, chat
from g3n_core.history import FittedConversation, fit_conversation
from g3n_core.prompt import prepare_prompt

SHORT = GenerationSettings(max_new_tokens=3)
FILLER = "the colour of the sky at dusk over the sea, in some detail " * 2


def _conversation(turns: int, first_user_parts: list | None = None) -> list[dict]:
    """A system prompt and `turns` exchanges (each ~50 tokens), then a last question."""
    messages: list[dict] = [{"role": "system", "content": "You are terse."}]
    for i in range(turns):
        content = [*(first_user_parts or []), {"type": "text", "text": f"turn {i}: {FILLER}"}] if i == 0 else f"turn {i}: {FILLER}"
        messages += [{"role": "user", "content": content}, {"role": "assistant", "content": f"answer {i}: {FILLER}"}]
    return [*messages, {"role": "user", "content": "and the last question?"}]


def _prompt_text(tiny, prepared) -> str:
    return tiny.tokenizer.decode(prepared.inputs["input_ids"][0])


def test_a_hundred_turn_conversation_keeps_answering_with_the_newest_turns(tiny):
    messages = _conversation(100)
    for extra in range(3):  # and it goes on answering as it grows
        reply = chat(tiny, messages, SHORT)
        assert reply.new_tokens >= 1 and reply.dropped_turns > 0
        assert reply.prompt_tokens + SHORT.max_new_tokens <= tiny.context_length
        assert any("oldest turns were left out" in w and "clear the chat" in w for w in reply.warnings)
        messages = [*messages, {"role": "assistant", "content": reply.text or "ok"}, {"role": "user", "content": f"more {extra}"}]
    prepared = prepare_prompt(tiny, messages, SHORT.max_new_tokens)
    text = _prompt_text(tiny, prepared)
    assert "You are terse." in text  # the system prompt stays
    assert "more 2" in text and "turn 99:" in text and "turn 0:" not in text  # the newest stay, the oldest go
    assert f"turn {prepared.dropped_turns - 1}:" not in text and f"turn {prepared.dropped_turns}:" in text
    # As many turns as fit: one more would not.
    assert prepared.prompt_tokens + 60 + SHORT.max_new_tokens > tiny.context_length


def test_media_of_dropped_turns_is_never_decoded_and_is_counted(tiny, media):
    broken = {"type": "image", "image": str(media["truncated_image"])}  # would be a CorruptMediaError if decoded
    prepared = prepare_prompt(tiny, _conversation(100, [broken, {"type": "audio", "audio": str(media["audio"])}]), 3)
    assert prepared.num_images == 0 and prepared.num_audio == 0
    assert "(with 1 image, 1 audio)" in prepared.warnings[0]


def test_a_conversation_that_fits_is_sent_whole(tiny):
    prepared = prepare_prompt(tiny, _conversation(3), 3)
    assert prepared.dropped_turns == 0 and prepared.warnings == []
    assert "turn 0:" in _prompt_text(tiny, prepared)


def test_only_a_newest_turn_too_long_on_its_own_is_an_error_saying_what_to_remove(tiny):
    too_many = tiny.context_length // tiny.processor.image_seq_length + 1
    image = np.zeros((8, 8, 3), np.uint8)
    newest = {"role": "user", "content": [*[{"type": "image", "image": image}] * too_many, {"type": "text", "text": "?"}]}
    with pytest.raises(ContextOverflowError, match="even with every earlier turn left out; send fewer images") as caught:
        chat(tiny, [*_conversation(5)[:-1], newest], SHORT)
    assert f"{too_many} images x {tiny.processor.image_seq_length} tokens" in str(caught.value)
    assert chat(tiny, _conversation(5), SHORT).new_tokens >= 1  # the next request works


def test_max_new_tokens_over_the_context_is_refused_first(tiny):
    with pytest.raises(ContextOverflowError, match=r"max_new_tokens=1000000000 leaves no room") as caught:
        prepare_prompt(tiny, "hi", 10**9)
    assert "needs 0 tokens" not in str(caught.value)


def test_fit_keeps_the_fewest_drops_and_pairs_turns():
    messages = [{"role": "system", "content": []}] + [
        {"role": role, "content": [{"type": "text", "text": str(i)}]} for i in range(9) for role in ("user", "assistant")
    ][:-1]
    fitted = fit_conversation(messages, lambda kept: len(kept) <= 6)
    assert isinstance(fitted, FittedConversation) and fitted.dropped_turns == 6
    assert fitted.messages[0]["role"] == "system" and fitted.messages[1]["role"] == "user" and len(fitted.messages) == 6
    assert fit_conversation(messages, lambda kept: True).dropped_turns == 0
    assert len(fit_conversation(messages, lambda kept: False).messages) == 2  # the newest turn alone: the caller decides
