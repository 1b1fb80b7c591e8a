"""`python -m g3n_core serve --model tiny` driven by the official `openai` client: text, images, audio, files, streaming, errors, concurrency."""

from __future__ import annotations

import base64
import io
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import openai
import pytest
import soundfile as sf
from app_fixtures import recording_site

from g3n_core import GenerationSettings, chat

FEW = dict(model="tiny", max_tokens=6, temperature=0)
pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def client(tiny_server):
    return openai.OpenAI(base_url=tiny_server["url"], api_key="unused", max_retries=0, timeout=120)


def _data_url(path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _audio_part(data: bytes, fmt: str) -> dict:
    return {"type": "input_audio", "input_audio": {"data": base64.b64encode(data).decode(), "format": fmt}}


def _user(*parts) -> list[dict]:
    return [{"role": "user", "content": list(parts)}]


def _streamed(client, **kwargs) -> tuple[str, list]:
    chunks = list(client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kwargs))
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices), chunks


def test_models_lists_the_served_model(client):
    assert [m.id for m in client.models.list().data] == ["tiny"]
    assert client.models.retrieve("tiny").owned_by == "g3n-workbench"


def test_chat_streamed_and_not_give_the_local_reply(client, tiny):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Describe a sunset over the sea"}]
    full = client.chat.completions.create(messages=messages, model="tiny", max_tokens=12, temperature=0)
    choice = full.choices[0]
    assert choice.message.role == "assistant" and choice.finish_reason in ("stop", "length")
    assert full.usage.completion_tokens == 12 or choice.finish_reason == "stop"
    text, chunks = _streamed(client, messages=messages, model="tiny", max_tokens=12, temperature=0)
    assert text == choice.message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == choice.finish_reason
    assert chunks[-1].usage.model_dump() == full.usage.model_dump()
    local = chat(tiny, messages, GenerationSettings(max_new_tokens=12))  # one generate path: g3n_core's
    assert local.text == text.strip() and local.prompt_tokens == full.usage.prompt_tokens


def test_images_audio_video_and_uploaded_files(client, media, tiny):
    image_tokens, audio_tokens = tiny.processor.image_seq_length, tiny.processor.audio_seq_length
    plain = client.chat.completions.create(messages=_user({"type": "text", "text": "What is this?"}), **FEW)
    image = client.chat.completions.create(messages=_user({"type": "image_url", "image_url": {"url": _data_url(media["image"])}}, {"type": "text", "text": "What is this?"}), **FEW)
    assert image.usage.prompt_tokens > plain.usage.prompt_tokens + image_tokens  # the image's soft tokens are in the prompt

    tone = media["audio"].read_bytes()
    mp3 = io.BytesIO()
    sf.write(mp3, sf.read(media["audio"])[0], 16_000, format="MP3")
    for data, fmt in ((tone, "wav"), (mp3.getvalue(), "mp3")):
        heard = client.chat.completions.create(messages=_user(_audio_part(data, fmt), {"type": "text", "text": "Transcribe this."}), **FEW)
        assert heard.usage.prompt_tokens > plain.usage.prompt_tokens + audio_tokens and heard.choices[0].message.content

    uploaded = {kind: client.files.create(file=media[kind].open("rb"), purpose="user_data") for kind in ("image", "audio", "video")}
    assert uploaded["image"].id.startswith("file-") and uploaded["image"].bytes == media["image"].stat().st_size
    by_id = client.chat.completions.create(messages=_user({"type": "image_url", "image_url": {"url": uploaded["image"].id}}, {"type": "text", "text": "What is this?"}), **FEW)
    assert by_id.choices[0].message.content == image.choices[0].message.content  # the same image, by reference
    for kind in ("audio", "video"):
        reply = client.chat.completions.create(messages=_user({"type": "file", "file": {"file_id": uploaded[kind].id}}, {"type": "text", "text": "What is this?"}), **FEW)
        assert reply.usage.prompt_tokens > plain.usage.prompt_tokens + (audio_tokens if kind == "audio" else 2 * image_tokens), kind
    client.files.delete(uploaded["image"].id)
    with pytest.raises(openai.NotFoundError, match="no uploaded file"):
        client.chat.completions.create(messages=_user({"type": "image_url", "image_url": {"url": uploaded["image"].id}}), **FEW)


def test_sampling_stop_and_length(client):
    messages = _user({"type": "text", "text": "Tell me a story"})
    greedy = client.chat.completions.create(messages=messages, model="tiny", max_tokens=20, temperature=0).choices[0].message.content
    assert len(greedy) > 4
    stop = greedy[2:4]
    cut = client.chat.completions.create(messages=messages, model="tiny", max_tokens=20, temperature=0, stop=[stop])
    assert cut.choices[0].message.content == greedy.split(stop)[0] and cut.choices[0].finish_reason == "stop"
    streamed_cut, _ = _streamed(client, messages=messages, model="tiny", max_tokens=20, temperature=0, stop=stop)
    assert streamed_cut == greedy.split(stop)[0]
    short = client.chat.completions.create(messages=messages, model="tiny", max_completion_tokens=3, temperature=0)
    assert short.usage.completion_tokens == 3 and short.choices[0].finish_reason == "length"
    sampled = [client.chat.completions.create(messages=messages, model="tiny", max_tokens=12, temperature=1.0, top_p=0.9, seed=s).choices[0].message.content for s in (1, 1, 2)]
    assert sampled[0] == sampled[1] != sampled[2]


def test_completions_generate_and_score(client, tiny):
    from evals.scoring import score_pairs_exact, tok_encode

    prompt = "Question: What colour is the sky?\nAnswer:"
    done = client.completions.create(model="tiny", prompt=prompt, max_tokens=12, temperature=0, stop=["\n"])
    assert "\n" not in done.choices[0].text and done.usage.prompt_tokens == len(tok_encode(tiny.tokenizer, prompt))
    streamed = "".join(c.choices[0].text for c in client.completions.create(model="tiny", prompt=prompt, max_tokens=12, temperature=0, stop=["\n"], stream=True))
    assert streamed == done.choices[0].text

    scored = client.completions.create(model="tiny", prompt=[prompt, prompt + " Blue"], max_tokens=0, echo=True, logprobs=2)
    context, whole = (c.logprobs for c in scored.choices)
    assert context.token_logprobs[0] is None and "".join(whole.tokens) == prompt + " Blue" and len(whole.top_logprobs[1]) == 2
    ids = tok_encode(tiny.tokenizer, prompt + " Blue")
    n = len(context.tokens)
    (expected,) = score_pairs_exact(tiny.model, [(ids[:n], ids[n:])], tiny.context_length)
    assert sum(whole.token_logprobs[n:]) == pytest.approx(expected.logprob, abs=1e-4)


def _status(call) -> openai.APIStatusError:
    with pytest.raises(openai.APIStatusError) as caught:
        call()
    return caught.value


def test_errors_have_openai_shape_and_the_next_request_works(client, tiny_server, media):
    chat_ = client.chat.completions.create
    hello = _user({"type": "text", "text": "hi"})
    cases = [
        (lambda: chat_(messages=hello, **{**FEW, "model": "gpt-4o"}), 404, "model_not_found", "serves 'tiny'"),
        (lambda: chat_(messages=hello, **{**FEW, "temperature": 5}), 400, None, "temperature"),
        (lambda: chat_(messages=hello, n=2, **FEW), 400, None, "n must be 1"),
        (lambda: chat_(messages=hello, tools=[{"type": "function", "function": {"name": "f"}}], **FEW), 400, "unsupported", "tool"),
        (lambda: chat_(messages=_user({"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(b"not a png" * 9).decode()}}), **FEW), 400, "invalid_media", "not a readable image"),
        (lambda: chat_(messages=_user({"type": "input_audio", "input_audio": {"data": "%%%", "format": "wav"}}), **FEW), 400, "invalid_media", "base64"),
        (lambda: chat_(messages=_user(_audio_part(media["audio"].read_bytes(), "wav"), _audio_part(media["audio"].read_bytes(), "wav")), **FEW), 400, None, "at most one audio clip"),
        (lambda: chat_(messages=_user(*[{"type": "image_url", "image_url": {"url": _data_url(media["image"])}}] * 9), **FEW), 400, None, "more than 8 images"),
        (lambda: chat_(messages=[{"role": "user", "content": "word " * 900}], model="tiny", max_tokens=2048), 400, "context_length_exceeded", "context of 2048"),
        (lambda: chat_(messages=_user({"type": "image_url", "image_url": {"url": str(media["image"])}}), **FEW), 403, "media_access_refused", "only uploaded files"),
        (lambda: chat_(messages=[{"role": "user", "content": ""}], **FEW), 400, None, "the message is empty"),
        (lambda: client.completions.create(model="tiny", prompt="hi", max_tokens=2, logprobs=1), 400, "unsupported", "echo=true"),
    ]
    for call, status, code, words in cases:
        err = _status(call)
        assert (err.status_code, err.code) == (status, code) and words in err.message, (status, code, words, err.status_code, err.body)
        assert set(err.body) == {"message", "type", "param", "code"}
    base = tiny_server["url"]
    for response, status in (
        (httpx.post(f"{base}/chat/completions", content=b"{not json", headers={"content-type": "application/json"}), 400),
        (httpx.post(f"{base}/chat/completions", content=b"x" * (3 * 2**20)), 413),
        (httpx.get(f"{base}/no/such/route"), 404),
    ):
        assert response.status_code == status and set(response.json()["error"]) == {"message", "type", "param", "code"}
    assert client.chat.completions.create(messages=hello, **FEW).choices[0].message.content  # still serving


def test_urls_are_refused_and_never_fetched(client):
    with recording_site() as (site, hits):
        err = _status(lambda: client.chat.completions.create(messages=_user({"type": "image_url", "image_url": {"url": f"{site}/cat.png"}}), **FEW))
    assert err.status_code == 403 and "fetching URLs is turned off" in err.message and hits == []


def test_eight_concurrent_streams_get_their_own_replies(client):
    def ask(i: int) -> dict:
        return dict(messages=[{"role": "system", "content": f"You are assistant {i}."}, {"role": "user", "content": f"Topic number {i * 7}"}],
                    model="tiny", max_tokens=10, temperature=1.0, seed=i)  # fmt: skip

    with ThreadPoolExecutor(8) as pool:
        streamed = list(pool.map(lambda i: _streamed(client, **ask(i))[0], range(8)))
    alone = [client.chat.completions.create(**ask(i)).choices[0].message.content for i in range(8)]
    assert streamed == alone and len(set(alone)) == 8  # each stream read only its own reply


def test_a_closed_stream_frees_the_model(client):
    stream = client.chat.completions.create(messages=_user({"type": "text", "text": "Write a very long story"}), model="tiny", max_tokens=1900, temperature=0, stream=True)
    next(iter(stream))
    stream.close()
    started = time.time()
    assert client.chat.completions.create(messages=_user({"type": "text", "text": "Quick one"}), **FEW).choices[0].message.content
    # 1900 tokens would hold the model for 20-45 s on these CPUs; cancelled, it is free within a token.
    assert time.time() - started < 12


def test_audio_arrays_are_bounded_before_decoding(client):
    big = base64.b64encode(np.zeros(16, np.uint8).tobytes() * (2**20 // 16 * 3)).decode()  # ~4 MB: over the 2 MB body limit
    assert _status(lambda: client.chat.completions.create(messages=_user({"type": "input_audio", "input_audio": {"data": big, "format": "wav"}}), **FEW)).status_code == 413
