"""Video with its sound: the audio slot present with sound and absent without, the setting, the conflict with an
attached clip, the stats, the CLI."""

from __future__ import annotations

import pytest

from g3n_core import GenerationSettings, MediaPolicy, Variant, chat, load_model
from g3n_core.prompt import prepare_prompt

SHORT = GenerationSettings(max_new_tokens=3)
SILENT = GenerationSettings(max_new_tokens=3, video_sound=False)


def _turn(*parts, text="What is said?"):
    return [{"role": "user", "content": [*parts, {"type": "text", "text": text}]}]


def _video(path):
    return {"type": "video", "video": str(path)}


def _audio_slots(loaded, messages, video_sound=True) -> int:
    ids = prepare_prompt(loaded, messages, 4, MediaPolicy(), video_sound).inputs["input_ids"][0].tolist()
    return ids.count(loaded.processor.audio_token_id)


def test_video_with_sound_sends_frames_and_its_sound(tiny, media):
    per_clip = tiny.processor.audio_seq_length
    assert _audio_slots(tiny, _turn(_video(media["video_with_speech"]))) == per_clip
    assert _audio_slots(tiny, _turn(_video(media["video_with_speech"])), video_sound=False) == 0
    assert _audio_slots(tiny, _turn(_video(media["video"]))) == 0  # no sound track: no slot
    reply = chat(tiny, _turn(_video(media["video_with_speech"])), SHORT)
    assert reply.video_frames == 8 and reply.audio_seconds == pytest.approx(3.5, abs=1.0)
    silent = chat(tiny, _turn(_video(media["video_with_speech"])), SILENT)
    assert silent.video_frames == 8 and silent.audio_seconds == 0.0 and silent.warnings == reply.warnings
    assert reply.prompt_tokens - silent.prompt_tokens >= per_clip  # the token budget counts the sound


def test_an_attached_clip_wins_over_the_videos_sound_and_says_so(tiny, media):
    messages = _turn(_video(media["video_with_speech"]), {"type": "audio", "audio": str(media["audio"])})
    assert _audio_slots(tiny, messages) == tiny.processor.audio_seq_length  # one clip per turn
    reply = chat(tiny, messages, SHORT)
    assert reply.audio_seconds == pytest.approx(2.0, abs=0.01)  # the attached 2 s tone, not the video's speech
    assert any("its sound was left out: the turn also has an audio clip" in w for w in reply.warnings)


def test_of_two_videos_with_sound_the_first_ones_is_used(tiny, media):
    messages = _turn(_video(media["video_with_speech"]), _video(media["video_with_speech"]))
    assert _audio_slots(tiny, messages) == tiny.processor.audio_seq_length
    assert any("an earlier video in the turn" in w for w in chat(tiny, messages, SHORT).warnings)


def test_each_turn_carries_its_own_sound(tiny, media):
    messages = [
        *_turn(_video(media["video_with_speech"])),
        {"role": "assistant", "content": "A ball."},
        *_turn({"type": "audio", "audio": str(media["audio"])}, text="And this?"),
    ]
    assert _audio_slots(tiny, messages) == 2 * tiny.processor.audio_seq_length


def test_without_the_audio_tower_the_sound_is_left_out_with_a_note(media):
    vision_only = load_model(Variant(towers=("vision",)))
    reply = chat(vision_only, _turn(_video(media["video_with_speech"])), SHORT)
    assert reply.audio_seconds == 0 and any("without the audio tower" in w for w in reply.warnings)


def test_cli_reports_frames_and_audio_seconds(capsys, media):
    from test_cli import generate_json

    with_sound = generate_json(capsys, "--video", str(media["video_with_speech"]), "What is said?")
    without = generate_json(capsys, "--video", str(media["video_with_speech"]), "--no-video-sound", "What is said?")
    assert with_sound["video_frames"] == 8 and with_sound["audio_seconds"] > 2 and with_sound["variant"]["towers"] == ["vision", "audio"]
    assert without["audio_seconds"] == 0 and without["variant"]["towers"] == ["vision"]
    assert with_sound["prompt_tokens"] - without["prompt_tokens"] >= 188
    long = generate_json(capsys, "--audio", str(media["long_speech"]), "Transcribe this.")
    assert long["audio_windows"] == 3 and long["audio_seconds"] > 60


def test_the_example_video_plays_with_its_sound_in_chromium():
    """app/examples/ball.mp4 decodes in the browser: frames advance and audio bytes are decoded."""
    import functools
    import http.server
    import shutil
    import threading
    from pathlib import Path

    from playwright.sync_api import sync_playwright

    from app.examples import EXAMPLES_DIR, FILES

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.fail("Chromium is missing: run bash scripts/setup.sh --dev (it installs Debian's chromium)")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(EXAMPLES_DIR))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
            played = page.evaluate(
                """async (name) => {
                  const video = Object.assign(document.createElement('video'), {src: '/' + name, muted: true});
                  document.body.appendChild(video);
                  await new Promise((ok, bad) => { video.onloadeddata = ok; video.onerror = () => bad(new Error('code ' + video.error.code)); });
                  await video.play();
                  await new Promise(done => setTimeout(done, 800));
                  return {time: video.currentTime, width: video.videoWidth, audio: video.webkitAudioDecodedByteCount};
                }""",
                FILES["video"],
            )
            browser.close()
    finally:
        server.shutdown()
    assert played["width"] == 96 and played["time"] > 0.2 and played["audio"] > 0
