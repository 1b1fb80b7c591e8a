"""The API's access rules and limits in process: API keys, the bounded line (429), stop strings, upload store, settings flags."""

from __future__ import annotations

import argparse
import contextlib
import time

import openai
import pytest
from app_fixtures import serving

from g3n_core.errors import SettingsError
from g3n_core.serve import ServeSettings, build_api, mount_root
from g3n_core.serve.files import FileStore
from g3n_core.serve.replies import StopScanner
from g3n_core.dataclass_args import add_dataclass_args, dataclass_from_args


@pytest.fixture()
def serve(tiny):
    """Serve the session's tiny model in process with given settings; yields a function returning the /v1 URL."""
    with contextlib.ExitStack() as servers:

        def start(settings: ServeSettings) -> str:
            api, _ = build_api(lambda: tiny, "tiny", settings)
            return servers.enter_context(serving(mount_root(api))) + "/v1"

        yield start


def test_api_key_is_required_when_configured(serve, monkeypatch):
    monkeypatch.setenv("G3N_TEST_KEY", "s3cret")
    url = serve(ServeSettings(api_key_env="G3N_TEST_KEY"))
    with pytest.raises(openai.AuthenticationError, match="API key"):
        openai.OpenAI(base_url=url, api_key="wrong", max_retries=0).models.list()
    assert openai.OpenAI(base_url=url, api_key="s3cret", max_retries=0).models.list().data[0].id == "tiny"
    monkeypatch.delenv("G3N_TEST_KEY")
    with pytest.raises(SettingsError, match="G3N_TEST_KEY is not set"):
        build_api(lambda: None, "tiny", ServeSettings(api_key_env="G3N_TEST_KEY"))


def test_a_full_line_answers_429_and_frees_up(serve):
    client = openai.OpenAI(base_url=serve(ServeSettings(max_queue=1, model_name="gemma-test")), api_key="x", max_retries=0)
    long = client.chat.completions.create(model="gemma-test", messages=[{"role": "user", "content": "Write a long story"}], max_tokens=1500, temperature=0, stream=True)
    next(iter(long))
    with pytest.raises(openai.RateLimitError, match="busy"):
        client.chat.completions.create(model="gemma-test", messages=[{"role": "user", "content": "hi"}], max_tokens=2)
    long.close()
    deadline = time.time() + 20
    while True:  # the closed stream gives its place back once its generation stops
        try:
            assert client.chat.completions.create(model="gemma-test", messages=[{"role": "user", "content": "hi"}], max_tokens=2).choices
            break
        except openai.RateLimitError:
            assert time.time() < deadline, "the line never freed up"
            time.sleep(0.2)


def test_stop_scanner_holds_back_partial_stops():
    scanner = StopScanner(["END", "\n\n"])
    assert [scanner.feed(p) for p in ("Hello E", "N", "ough. E", "ND more")] == ["Hello ", "", "ENough. ", ""]
    assert scanner.stopped and scanner.flush() == ""
    open_ended = StopScanner(["END"])
    assert open_ended.feed("all EN") == "all " and open_ended.flush() == "EN"


def test_upload_store_keeps_the_newest_and_refuses_non_media(tmp_path):
    store = FileStore(max_files=2, root=tmp_path)
    first, second, third = (store.save(f"{n}.png", b"data", "vision") for n in "abc")
    assert [f["id"] for f in store.list()] == [second["id"], third["id"]] and len(list(tmp_path.iterdir())) == 2
    with pytest.raises(Exception, match="no uploaded file"):
        store.get(first["id"])
    with pytest.raises(Exception, match="upload images, audio clips or videos"):
        store.save("notes.txt", b"text", "user_data")
    with pytest.raises(Exception, match="no uploaded file"):
        store.get("../../etc/passwd")


def test_settings_flags_come_from_the_fields():
    parser = argparse.ArgumentParser()
    add_dataclass_args(parser, ServeSettings)
    settings = dataclass_from_args(ServeSettings, parser.parse_args(["--max-images", "3", "--allow-url-media", "--api-key-env", "K"]))
    assert (settings.max_images, settings.allow_url_media, settings.api_key_env, settings.max_tokens) == (3, True, "K", ServeSettings().max_tokens)
    with pytest.raises(SettingsError, match="max_queue"):
        ServeSettings(max_queue=0)


def test_media_headers_are_checked_before_decoding(tmp_path, media):
    import base64

    from g3n_core.errors import UnsupportedMediaError
    from g3n_core.serve.messages import MessageConverter

    settings = ServeSettings(max_image_pixels=96 * 64 - 1, max_audio_seconds=1)
    store = FileStore(4, tmp_path)
    image = "data:image/png;base64," + base64.b64encode(media["image"].read_bytes()).decode()  # 96 x 64
    with pytest.raises(UnsupportedMediaError, match="96x64 pixels is over"):
        MessageConverter(settings, store, 8).convert([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": image}}]}])
    upload = store.save("tone.wav", media["audio"].read_bytes(), "user_data")  # 2 s
    with pytest.raises(UnsupportedMediaError, match="2 s of audio is over"):
        MessageConverter(settings, store, 8).convert([{"role": "user", "content": [{"type": "file", "file": {"file_id": upload["id"]}}]}])
    fine = MessageConverter(ServeSettings(), store, 8).convert([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": image}}, "hi"]}])
    assert [p["type"] for p in fine[0]["content"]] == ["image", "text"]


def test_urls_are_fetched_only_when_the_operator_allows(serve):
    from app_fixtures import recording_site

    client = openai.OpenAI(base_url=serve(ServeSettings(allow_url_media=True)), api_key="x", max_retries=0)
    with recording_site() as (site, hits):  # it answers with an empty body: fetched, then refused as media
        with pytest.raises(openai.BadRequestError, match="not a readable image"):
            client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": f"{site}/cat.png"}}]}], max_tokens=2)
    assert hits == ["/cat.png"]
