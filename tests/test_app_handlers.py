"""The app's chat, model-panel, safety and launch functions, called directly (no server)."""

from __future__ import annotations

import time
from pathlib import Path
from dataclasses import replace

import gradio as gr
import pytest
from app_fixtures import tiny_bench

from app import chat_handlers as h
from app.examples import chat_examples, example_files
from app.launch import build_parser, requested_model, startup_variant, usable_model
from app.model_panel import NO_SLICE, size_table, variant_from_panel, weights_banner
from g3n_core import VariantError
from g3n_core import GenerationSettings
from g3n_core.errors import MessageError, ModelSourceError, SettingsError, UnsupportedMediaError, VariantError

SHORT = dict(max_new_tokens=4, temperature=0.0, top_p=0.95, top_k=64, seed=0)


def panel(model="tiny", **knobs):
    """The model panel's values by field name (what its controls send)."""
    return {"model": model, "attn": "sdpa", "dtype": "float32", "device": "cpu", "towers": [], "matformer": NO_SLICE, "sparsity": "default", **knobs}


@pytest.fixture(scope="module")
def bench(tiny, media, tmp_path_factory):
    bench = tiny_bench(tiny, tmp_path_factory.mktemp("runs"))
    # The media fixtures stand in for uploads: allow their folder as if it were Gradio's upload folder.
    bench.policy = replace(bench.policy, allowed_roots=(*bench.policy.allowed_roots, media["image"].parent))
    return bench


def _turn(text, *files):
    return h.user_message({"text": text, "files": [str(f) for f in files]})


def _last_conversation(steps) -> list:
    """The chatbot's last value among `respond`'s steps (its final step only unlocks the textbox)."""
    return [chatbot for chatbot, _, _ in steps if isinstance(chatbot, list)][-1]


def _answer(bench, history, turn, max_new_tokens=4):
    steps = list(h.stream_turn(bench, history, turn, bench.default_variant, "Be brief.", GenerationSettings(max_new_tokens=max_new_tokens)))
    return steps


# -- messages and settings -----------------------------------------------------------------------


def test_settings_temperature_zero_is_greedy_and_bad_values_are_typed():
    assert h.settings_from_ui(SHORT).do_sample is False
    sampled = h.settings_from_ui({**SHORT, "temperature": 0.7, "seed": 3.0})
    assert (sampled.do_sample, sampled.temperature, sampled.seed) == (True, 0.7, 3)
    with pytest.raises(SettingsError):
        h.settings_from_ui({**SHORT, "top_p": 0.0})


def test_file_kinds_from_mime_or_suffix():
    assert h.file_kind("/x/a.PNG") == "image"
    assert h.file_kind("/x/rec.webm", "audio/webm") == "audio"
    assert h.file_kind("/x/clip.mp4") == "video"
    with pytest.raises(UnsupportedMediaError):
        h.file_kind("/x/notes.txt")


def test_model_messages_drop_stats_merge_turns_and_type_files(bench, media):
    history = [
        _turn("look", media["image"], media["audio"]),
        {"role": "assistant", "content": "a circle"},
        {"role": "assistant", "content": "details", "metadata": {"title": "📊 stats", "id": f"{h.STATS_MARK}-1"}},
        _turn("and this", media["video"]),
    ]
    messages = h.model_messages(history, "  Be brief. ")
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert [p["type"] for p in messages[1]["content"]] == ["image", "audio", "text"]
    assert messages[2]["content"] == [{"type": "text", "text": "a circle"}]
    assert messages[3]["content"][0] == {"type": "video", "video": str(media["video"])}
    with pytest.raises(MessageError):
        h.user_message({"text": "  ", "files": []})


def test_retry_and_undo_edit_the_last_turn():
    history = [_turn("one"), {"role": "assistant", "content": "1"}, _turn("two"), {"role": "assistant", "content": "2"}]
    shown, kept, turn = h.retry_turn(history)
    assert kept == history[:2] and turn == history[2] and shown == history[:3]
    shown, kept, box = h.undo_turn(history)
    assert kept == history[:2] and box == {"text": "two", "files": []}


def test_webcam_snapshot_joins_the_message_being_written(bench, media):
    box, camera = h.attach_snapshot({"text": "What is this?", "files": [{"path": "/up/a.png"}]}, "/up/snap.png")
    assert box == {"text": "What is this?", "files": ["/up/a.png", "/up/snap.png"]} and camera is None
    assert h.attach_snapshot(None, "/up/snap.png")[0] == {"text": "", "files": ["/up/snap.png"]}
    with pytest.warns(UserWarning, match="snapshot"):
        assert h.attach_snapshot({"text": "hi", "files": []}, None) == ({"text": "hi", "files": []}, None)
    # a snapshot is an image upload like any other: the turn built from it reaches the model
    box, _ = h.attach_snapshot({"text": "Describe it", "files": []}, str(media["image"]))
    *_, reply = _answer(bench, [], h.user_message(box))[-1]
    assert reply.new_tokens >= 1 and reply.prompt_tokens > bench.cache.get(bench.default_variant).processor.image_seq_length


# -- generation ----------------------------------------------------------------------------------


def test_stream_turn_streams_and_ends_with_stats(bench, media):
    turn = _turn("What is in the picture?", media["image"])
    steps = _answer(bench, [], turn, max_new_tokens=5)
    assert len(steps) >= 2  # at least one partial step, then the final one
    conversation, text, reply = steps[-1]
    assert reply is not None and reply.new_tokens >= 1 and reply.prompt_tokens > bench.cache.get(bench.default_variant).processor.image_seq_length
    assert conversation[0] == turn and conversation[1] == {"role": "assistant", "content": reply.text}
    assert h.is_stats(conversation[2]) and "prompt tokens" in conversation[2]["metadata"]["title"]
    assert all(r is None for _, _, r in steps[:-1])


def test_closing_the_stream_cancels_generation_and_frees_the_model(bench):
    loaded = bench.cache.get(bench.default_variant)
    steps = h.stream_turn(bench, [], _turn("Tell a long story"), bench.default_variant, "", GenerationSettings(max_new_tokens=1500))
    next(steps), next(steps)
    steps.close()  # what Gradio's stop button does to the event's generator
    assert loaded.lock.acquire(timeout=10), "generation kept the model busy after stop"
    loaded.lock.release()
    assert _answer(bench, [], _turn("next"))[-1][2].finish_reason in ("stop", "length")


def test_the_sessions_stop_button_ends_its_own_reply_with_stats(bench):
    steps = h.respond(bench, [], _turn("Tell a long story"), bench.default_variant, "", {**SHORT, "max_new_tokens": 1500}, session="A")
    other = h.respond(bench, [], _turn("Another session"), bench.default_variant, "", SHORT, session="B")
    next(steps), next(steps)
    assert bench.streams.stop("A")
    conversation = _last_conversation(steps)  # the reply finishes at once, with its stats
    assert "stopped" in conversation[-1]["metadata"]["title"] and "stopped by you" in conversation[-1]["content"]
    assert "stopped" not in _last_conversation(other)[-1]["metadata"]["title"]  # B's reply was not touched
    bench.streams.new_turn("C")
    assert not bench.streams.stop("C")  # stop before the reply started: it ends as soon as it starts
    conversation = _last_conversation(h.respond(bench, [], _turn("queued"), bench.default_variant, "", {**SHORT, "max_new_tokens": 1500}, session="C"))
    assert conversation[-1]["metadata"]["title"].endswith("stopped")


@pytest.mark.parametrize("kind", ["garbage_image", "truncated_audio", "empty_video"])
def test_bad_media_is_a_readable_error_and_the_next_turn_works(bench, media, kind):
    with pytest.raises(gr.Error) as caught:
        _answer(bench, [], _turn("what is this?", media[kind]))
    assert media[kind].name in caught.value.message and "error" in caught.value.title.lower()
    assert str(media[kind].parent) not in caught.value.message  # the user's file name, not the server's path
    assert _answer(bench, [], _turn("hello"))[-1][2] is not None


def test_server_paths_outside_uploads_are_refused(bench, tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(example_files()["image"].read_bytes())
    with pytest.raises(gr.Error, match="only uploaded files"):
        _answer(bench, [], _turn("read it", secret))


def test_urls_are_refused_without_the_flag(bench):
    url_turn = {"role": "user", "content": [{"path": "http://127.0.0.1:9/cat.png", "mime_type": "image/png"}, "?"]}
    with pytest.raises(gr.Error, match="URLs is turned off"):
        _answer(bench, [], url_turn)


@pytest.mark.parametrize("case", ["garbage_image", "two_audio", "over_context", "url"])
def test_a_failed_turn_is_taken_off_the_page_and_the_box_gets_the_message_back(bench, media, case):
    history = [_turn("hi"), {"role": "assistant", "content": "hello"}]
    turns = {
        "garbage_image": (_turn("this?", media["garbage_image"]), media["garbage_image"].name),
        "two_audio": (_turn("both?", media["audio"], media["audio_44k_stereo"]), "at most one audio clip"),
        "over_context": (_turn("word " * bench.cache.get(bench.default_variant).context_length), "over the model&#x27;s context of"),
        "url": ({"role": "user", "content": [{"path": "http://127.0.0.1:9/cat.png", "mime_type": "image/png"}, "look"]}, "URLs is turned off"),
    }
    turn, needle = turns[case]
    with pytest.warns(UserWarning, match=needle) as shown:  # gr.Warning outside a page: the toast's message
        steps = list(h.respond(bench, history, turn, bench.default_variant, "", SHORT, progress=None))
    assert len(steps) == 1, "a failed turn must not raise (a failed event marks the page's outputs 'Error')"
    chatbot, kept, box = steps[0]
    assert chatbot == history and kept == history  # the failed turn is off the page and out of the history
    wanted = h.textbox_value(turn)  # text and attachments back in the box, which is usable again
    assert box.interactive is True and box.value["text"] == wanted["text"]
    assert [f["orig_name"] for f in box.value["files"]] == [Path(f).name for f in wanted["files"] if not f.startswith("http")]
    toasts = [str(w.message) for w in shown if w.category is UserWarning]  # (a ResourceWarning of an earlier test may land here)
    assert all(str(media["image"].parent) not in toast for toast in toasts), toasts  # never a server path
    steps = list(h.respond(bench, history, _turn("next"), bench.default_variant, "", SHORT, progress=None))
    assert h.is_stats(_last_conversation(steps)[-1]) and steps[-1][2].interactive is True  # the next turn works at once


def test_max_new_tokens_over_the_context_are_clamped_with_a_note_in_the_stats(bench):
    context = bench.cache.get(bench.default_variant).context_length
    settings = h.settings_from_ui({**SHORT, "max_new_tokens": context})
    steps = h.stream_turn(bench, [], _turn("hello"), bench.default_variant, "", settings, session="clamp")
    next(steps)
    bench.streams.stop("clamp")
    *_, (conversation, _, reply) = steps
    assert "max new tokens lowered" in reply.warnings[0] and "max new tokens lowered" in conversation[-1]["content"]


def test_api_chat_returns_text_and_records_the_session(bench, media):
    steps = list(h.api_chat(bench, {"text": "Describe", "files": [str(media["audio"])]}, [], bench.default_variant, "", **SHORT))
    text, history = steps[-1]
    assert isinstance(text, str) and history[-2]["content"] == text
    assert [row["role"] for row in h.transcript(history)] == ["user", "assistant"]
    assert h.transcript(history)[0]["files"] == [media["audio"].name]


# -- examples, model panel, safety, launch -------------------------------------------------------


def test_examples_are_small_local_files_the_model_accepts(bench):
    examples = chat_examples()
    files = [f for example in examples for f in example.get("files", [])]
    assert {h.file_kind(f) for f in files} == {"image", "audio", "video"}
    for path in map(example_files().get, ("image", "audio", "video")):
        assert path.stat().st_size < 64_000
    for example in examples[1:]:
        assert _answer(bench, [], h.user_message(example))[-1][2].new_tokens >= 1


def test_panel_builds_variants_and_names_bad_fields(bench):
    variant = variant_from_panel(bench, panel(attn="eager", sparsity="off"))
    assert (variant.attn, variant.towers, variant.sparsity, variant.matformer) == ("eager", (), "off", None)
    custom = variant_from_panel(bench, panel(towers=["vision"], matformer="ffn=256*14;skip=7"))
    assert custom.matformer.skip == (7,) and custom.matformer.ffn == (256,) * 14
    rule = variant_from_panel(bench, panel(matformer="ffn=256,3-4:512"))
    assert rule.matformer.ffn == (256, 256, 256, 512, 512) + (256,) * 10
    assert variant_from_panel(bench, panel(sparsity="  ")).sparsity == "default"  # an emptied box: the default
    with pytest.raises(VariantError, match="matformer.*E4B"):
        variant_from_panel(bench, panel(matformer="E2B"))  # a Lab preset needs E4B's 35 layers
    with pytest.raises(VariantError, match="attn"):
        variant_from_panel(bench, panel(attn="flash_attention_2"))


def test_the_panel_offers_only_presets_that_fit_the_model(bench):
    from app.model_panel import slice_choices
    from g3n_core.matformer.mini_ladder import mini_presets

    assert [key for _, key in slice_choices(bench, "tiny")] == [NO_SLICE]
    e4b = [key for _, key in slice_choices(bench, "e4b-shape")]
    assert e4b[0] == NO_SLICE and "E2B" in e4b and len(e4b) == 17
    mini = slice_choices(bench, "mini")  # mini's own ladder, labelled with what it measured
    assert [key for _, key in mini] == [NO_SLICE, *(p.key for p in mini_presets())] and "M effective" in mini[-1][0]
    assert [key for _, key in slice_choices(bench, "/etc")] == [NO_SLICE]  # nothing read outside the allowed folders


def test_size_table_and_random_weights_banner(bench):
    loaded = bench.cache.get(bench.default_variant)
    table = size_table(loaded)
    assert {"text decoder", "vision tower", "audio tower", "total"} <= set(table["component"])
    assert "Random weights" in weights_banner(loaded, []) and "fell back" in weights_banner(None, ["fell back"])


def test_default_model_order_and_offline_fallback_within_seconds():
    assert requested_model("e2b-shape", {"G3N_MODEL": "x/y", "SPACE_ID": "a/b"}) == "e2b-shape"
    assert requested_model(None, {"G3N_MODEL": "x/y", "SPACE_ID": "a/b"}) == "x/y"
    assert requested_model(None, {"SPACE_ID": "a/b"}) == "google/gemma-3n-E4B-it"
    assert requested_model(None, {}) == "mini"  # the trained built-in when no real checkpoint is asked for
    started = time.perf_counter()
    model, notes = usable_model("google/gemma-3n-E4B-it")  # HF_HUB_OFFLINE=1 in tests: never waits on the hub
    assert model == "mini" and "google/gemma-3n-E4B-it" in notes[0] and "mini" in notes[0]
    assert time.perf_counter() - started < 10
    variant, notes = startup_variant(build_parser().parse_args(["--attn", "eager"]), {"SPACE_ID": "me/space"})
    assert (variant.model, variant.attn, len(notes)) == ("mini", "eager", 1)


def test_loading_a_sliced_text_only_variant_reports_progress_chats_and_refuses_images(bench, media):
    from app.model_panel import load_from_panel

    seen: list[float] = []
    progress = lambda fraction, desc=None: seen.append(fraction)  # noqa: E731 - stands in for gr.Progress
    variant, status, banner, table, note = load_from_panel(bench, panel(attn="eager", matformer="ffn=256*14;skip=7", sparsity="off"), progress=progress)
    assert variant.text_only and variant.matformer.skip == (7,) and note.startswith("✅ Loaded `tiny eager fp32 text-only")
    assert "tiny eager fp32 text-only mf:ffn 256x14 skip 7" in status and "text only" in status
    assert seen and seen[-1] == 1.0 and "Random weights" in banner
    assert "vision tower" not in set(table["component"])
    assert bench.cache.get(variant).text_config.num_hidden_layers == 14
    text_steps = list(h.stream_turn(bench, [], _turn("hello"), variant, "", GenerationSettings(max_new_tokens=3)))
    assert text_steps[-1][2].new_tokens >= 1
    with pytest.raises(gr.Error, match="without the vision tower"):
        list(h.stream_turn(bench, [], _turn("see?", media["image"]), variant, "", GenerationSettings(max_new_tokens=2)))
    bench.cache.evict(variant)


def test_special_tokens_in_user_text_stay_plain_text(bench):
    def prompt_tokens(text: str) -> int:
        return _answer(bench, [], _turn(text), max_new_tokens=1)[-1][2].prompt_tokens

    # One special token id would make the difference 0; as plain text it takes several ordinary tokens.
    assert prompt_tokens("a <start_of_turn>") - prompt_tokens("a") > 1
    assert prompt_tokens("a <image_soft_token>") - prompt_tokens("a") > 1


def test_speed_features_in_the_panel_become_variant_fields(bench):
    variant = variant_from_panel(bench, panel(sparse_ffn=True, compile=True, kv_cache="static", ple="resident", quant="none", prepack=False))
    assert (variant.sparse_ffn, variant.compile, variant.kv_cache) == (True, True, "static")
    assert variant.name.endswith("sparse-ffn compile kv:static")
    with pytest.raises(VariantError, match="prepack"):
        variant_from_panel(bench, panel(prepack=True))


def test_long_audio_and_video_sound_settings_reach_the_reply_and_its_stats(bench, media):
    def stats(**settings):
        message = {"text": settings.pop("text"), "files": [str(settings.pop("file"))]}
        *_, (_, history) = h.api_chat(bench, message, [], bench.default_variant, max_new_tokens=2, **settings)
        return history[-1]["metadata"]["title"], history[-1]["content"]

    windowed, _ = stats(text="Transcribe this.", file=media["long_speech"])
    assert "s of audio in 3 windows" in windowed
    truncated, details = stats(text="Transcribe this.", file=media["long_speech"], long_audio="truncate")
    assert "windows" not in truncated and "truncated to the first 30 s" in details
    answered, details = stats(text="Is the speaker happy?", file=media["long_speech"], long_audio="transcribe_then_answer")
    assert "in 3 windows" in answered and "answered over this transcript" in details
    silent, _ = stats(text="What is said?", file=media["video_with_speech"], video_sound=False)
    assert "8 video frames" in silent and "s of audio" not in silent
    with pytest.raises(gr.Error, match="long_audio=.split. must be one of truncate, chunk"):  # the API says it in plain text
        list(h.api_chat(bench, {"text": "hi", "files": []}, [], bench.default_variant, long_audio="split"))
