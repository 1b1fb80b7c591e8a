"""Token ids -> text: streamed deltas, the whole decode, evals' local answer and the /v1 server's reply are one string,
byte-fallback runs that are not valid UTF-8 included (g3n_core.detokenize)."""

from __future__ import annotations

import dataclasses
import logging
import random

import openai
import pytest
import torch
from app_fixtures import serving

from g3n_core import chat
from g3n_core.detokenize import Detokenizer, byte_token_ids, decode_text
from g3n_core.serve import build_api, mount_root
from evals.model import EvalModel
from evals.requests import GenerateRequest

pytestmark = pytest.mark.usefixtures("single_thread")


def _ids(tokenizer, *tokens: str) -> list[int]:
    ids = tokenizer.convert_tokens_to_ids(list(tokens))
    assert tokenizer.unk_token_id not in ids, tokens
    return ids


def _bytes(text: str) -> list[str]:
    return [f"<0x{b:02X}>" for b in text.encode()]


# (what the case shows, its tokens); "▁" is a leading space, <0xNN> a byte-fallback token
CASES = {
    "a multi-byte character split over byte tokens": ["▁raw", *_bytes("é"), "ser", *_bytes("€"), "▁the"],
    "a four-byte character": ["▁a", *_bytes("😀"), "ser"],
    "a lone continuation byte": ["▁raw", "<0xAC>", "ser"],
    # item 85 of tiny's builtin_short_answer: "5" alone is valid, b"5\xac" is not, so the tokenizer gives two U+FFFD
    "a valid byte made invalid by the next (item 85)": ["▁raw", "<0x35>", "<0xAC>", "ser", "etween", "▁oc", "__", "<0x62>", "ser", "<0xD6>", "mod", "its"],
    "a complete character then a stray continuation": ["▁a", *_bytes("é"), "<0xAC>", "▁the"],
    "a character cut off at the end": ["▁raw", *_bytes("€")[:2]],
    "a special token between the bytes of a character": ["▁raw", "<0xC3>", "<pad>", "<0xA9>", "ser", "<end_of_turn>"],
    "a newline byte swallowed by an invalid run": ["▁raw", "<0x0A>", "<0x80>", "ser", "\n", "▁the"],
}


def _settled(tokenizer, ids: list[int], k: int) -> bool:
    """True when ids[:k] end with a token that closes every byte run (not a byte, not skipped)."""
    return k == 0 or (ids[k - 1] not in byte_token_ids(tokenizer) and tokenizer.decode([ids[k - 1]], skip_special_tokens=True) != "")


@pytest.mark.parametrize("case", CASES)
def test_streamed_deltas_add_up_to_the_tokenizers_own_decode(tiny, case):
    tokenizer = tiny.tokenizer
    ids = _ids(tokenizer, *CASES[case])
    whole = tokenizer.decode(ids, skip_special_tokens=True)
    assert decode_text(tokenizer, ids) == whole
    detokenizer = Detokenizer(tokenizer)
    deltas = []
    for k, token in enumerate(ids, 1):
        deltas.append(detokenizer.push([token]))
        assert whole.startswith(detokenizer.text)  # nothing sent is ever taken back
        if _settled(tokenizer, ids, k):  # and nothing is held past the token that settles it
            assert detokenizer.text == tokenizer.decode(ids[:k], skip_special_tokens=True)
    deltas.append(detokenizer.finish())
    assert "".join(deltas) == detokenizer.text == whole
    assert detokenizer.finish() == "" and detokenizer.text == whole
    at_once = Detokenizer(tokenizer)
    assert at_once.push(ids) + at_once.finish() == whole


def test_item_85_reads_as_the_tokenizer_reads_it(tiny):
    tokenizer = tiny.tokenizer
    ids = _ids(tokenizer, *CASES["a valid byte made invalid by the next (item 85)"])
    detokenizer = Detokenizer(tokenizer)
    assert [detokenizer.push([i]) for i in ids[:3]] == [" raw", "", ""]  # "5" waits: the next byte may (and does) spoil it
    assert detokenizer.push(ids[3:4]) == "\ufffd\ufffdser"
    assert detokenizer.push(ids[4:]) + detokenizer.finish() == "etween oc__bser\ufffdmodits"


def test_random_id_sequences_stream_to_the_whole_decode(tiny):
    tokenizer = tiny.tokenizer
    pool = sorted(byte_token_ids(tokenizer)) + tokenizer.all_special_ids + list(range(263, len(tokenizer)))
    rng = random.Random(15)
    for _ in range(300):
        ids = [rng.choice(pool) if rng.random() < 0.5 else rng.randrange(7, 263) for _ in range(rng.randrange(1, 24))]
        detokenizer = Detokenizer(tokenizer)
        pieces = []
        for start in range(0, len(ids), step := rng.randrange(1, 4)):
            pieces.append(detokenizer.push(ids[start : start + step]))
        pieces.append(detokenizer.finish())
        assert "".join(pieces) == tokenizer.decode(ids, skip_special_tokens=True), ids


class _ContextDecoder:
    """A tokenizer whose decode depends on more than the last token (not Gemma's): token 9 reads '!' only at the start."""

    unk_token, unk_token_id = "<unk>", 0

    def convert_tokens_to_ids(self, names):
        return [0] * len(names)

    def decode(self, ids, skip_special_tokens=True):
        return "".join("!" if (i == 9 and k == 0 and len(ids) > 2) else f"<{i}>" for k, i in enumerate(ids))


def test_a_tokenizer_that_decodes_by_context_keeps_the_streamed_sum(caplog):
    detokenizer = Detokenizer(_ContextDecoder())
    sent = detokenizer.push([9]) + detokenizer.push([5]) + detokenizer.push([6])
    with caplog.at_level(logging.WARNING, logger="g3n_core.detokenize"):
        rest = detokenizer.finish()
    assert sent + rest == detokenizer.text == "<9><5><6>"  # what was sent stands; the whole decode would say "!<5><6>"
    assert "decodes 3 ids differently" in caplog.text


class _ScriptedModel:
    """tiny's model, except that generate emits given token ids (then end of turn), honouring stopping criteria as
    transformers does: the token choice is scripted, every step from ids to text is the real one."""

    def __init__(self, model, ids: list[int], end: int):
        self._model, self._ids, self._end = model, ids, end

    def __getattr__(self, name):
        return getattr(self._model, name)

    def generate(self, input_ids, streamer=None, stopping_criteria=(), generation_config=None, **kwargs):
        sequence = input_ids
        if streamer is not None:
            streamer.put(input_ids.cpu())
        for token in [*self._ids, self._end][: generation_config.max_new_tokens]:
            sequence = torch.cat([sequence, torch.tensor([[token]])], dim=1)
            if streamer is not None:
                streamer.put(torch.tensor([token]))
            if token == self._end or any(bool(c(sequence, None).all()) for c in stopping_criteria or ()):
                break
        if streamer is not None:
            streamer.end()
        return sequence


@pytest.fixture(scope="module")
def scripted(tiny):
    """A loaded tiny whose replies are `ids`, served at /v1 in process: yields (set the ids, the client)."""
    end = tiny.tokenizer.convert_tokens_to_ids("<end_of_turn>")
    state = {"loaded": tiny}

    def script(ids: list[int]):
        state["loaded"] = dataclasses.replace(tiny, model=_ScriptedModel(tiny.model, ids, end))
        return state["loaded"]

    api, _ = build_api(lambda: state["loaded"], "tiny")
    with serving(mount_root(api)) as url:
        yield script, openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=60)


@pytest.mark.parametrize("case", CASES)
def test_every_path_gives_the_same_text(tiny, scripted, case):
    tokenizer = tiny.tokenizer
    ids = _ids(tokenizer, *CASES[case])
    whole = tokenizer.decode(ids, skip_special_tokens=True)
    script, client = scripted
    loaded = script(ids)
    messages = [{"role": "user", "content": "Hi"}]
    ask = dict(model="tiny", max_tokens=32, temperature=0)
    assert client.chat.completions.create(messages=messages, **ask).choices[0].message.content == whole
    streamed = client.chat.completions.create(messages=messages, stream=True, **ask)
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == whole
    assert client.completions.create(prompt="Hi", **ask).choices[0].text == whole
    assert "".join(c.choices[0].text for c in client.completions.create(prompt="Hi", stream=True, **ask) if c.choices) == whole
    assert chat(loaded, messages).text == whole.strip()  # the app's and the CLI's reply (ChatReply.text is stripped)
    assert EvalModel(loaded).generate_one(GenerateRequest("Hi", until=(), max_new_tokens=32)).text == whole


def test_stop_strings_cut_the_same_text_locally_and_on_the_server(tiny, scripted):
    """A newline hidden in an invalid byte run is no stop; the real one after it is, for evals and for the server alike."""
    ids = _ids(tiny.tokenizer, *CASES["a newline byte swallowed by an invalid run"])
    script, client = scripted
    loaded = script(ids)
    expected = " raw\ufffd\ufffdser"
    local = EvalModel(loaded).generate_one(GenerateRequest("Hi", until=("\n",), max_new_tokens=32))
    assert local.text == expected and local.new_tokens == 5  # stopped at the newline token
    assert client.completions.create(prompt="Hi", model="tiny", max_tokens=32, temperature=0, stop=["\n"]).choices[0].text == expected
