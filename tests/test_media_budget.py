"""Media decoding within a budget: pixel counts from headers, videos by seeking, audio only as far as used,
and the heavy files of issue 17 each answered or refused within 10 s and 300 MB of extra memory."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from benchmarks.heavy_media import TARGET_RISE_MB, TARGET_SECONDS, _encode_video, _one_bit_png, write_heavy_files
from g3n_core import MediaPolicy
from g3n_core.errors import SettingsError, UnsupportedMediaError
from g3n_core.media import MediaNotes, load_image, load_video, read_audio
from g3n_core.media.policy import WORKING_SIDE

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def heavy(tmp_path_factory):
    return write_heavy_files(tmp_path_factory.mktemp("heavy"))


def test_heavy_files_answered_or_refused_within_time_and_memory(tiny, heavy):
    """In a fresh process with tiny loaded (the kernel's exact peak RSS per request), through g3n_core.chat."""
    files = {name: [kind, str(path)] for name, (kind, path) in heavy.items()}
    code = (
        "import json, sys; from pathlib import Path; from benchmarks.heavy_media import run_core; "
        "files = {k: (v[0], Path(v[1])) for k, v in json.loads(sys.argv[1]).items()}; print(json.dumps(run_core(files)))"
    )
    done = subprocess.run([sys.executable, "-c", code, json.dumps(files)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {row["file"]: row for row in json.loads(done.stdout.strip().splitlines()[-1])}
    assert set(rows) == set(files)
    for name, row in rows.items():
        assert row["seconds"] < TARGET_SECONDS, row
        assert row["rss_rise_mb"] < TARGET_RISE_MB, row
    assert rows["bitmap_12000x12000.png"]["outcome"] == "refused" and "12000x12000" in rows["bitmap_12000x12000.png"]["detail"]
    assert "sampled 8 of 3000 frames" in rows["static_3000_frames.mp4"]["detail"]
    assert "sampled 8 of 6000 frames evenly over 600.0 s" in rows["long_600s_64x48.mp4"]["detail"]
    assert "3600.0 s of audio" in rows["silence_1h.flac"]["detail"] and "truncated to the first 30 s" in rows["silence_1h.flac"]["detail"]


def test_pixel_limit_is_read_from_the_header(tmp_path):
    big = _one_bit_png(tmp_path / "big.png", 12_000)
    started = time.perf_counter()
    with pytest.raises(UnsupportedMediaError, match=r"12000x12000 \(144 megapixels\), over the 50-megapixel limit"):
        load_image(str(big), MediaPolicy())
    assert time.perf_counter() - started < 1.0  # nothing was decoded
    with pytest.raises(UnsupportedMediaError, match="over the 0-megapixel limit"):
        load_image(big.read_bytes(), MediaPolicy(max_image_pixels=100))


def test_large_allowed_images_are_scaled_to_the_working_size(tmp_path):
    Image.new("1", (6000, 3000), 1).save(tmp_path / "wide.png")
    image = load_image(str(tmp_path / "wide.png"), MediaPolicy())
    assert image.mode == "RGB" and image.size == (WORKING_SIDE, WORKING_SIDE // 2)
    assert image.getpixel((10, 10)) == (255, 255, 255)
    small = Image.new("P", (40, 30))
    assert load_image(small, MediaPolicy()).size == (40, 30) and small.mode == "P"  # the caller's image is untouched


def test_animated_gif_image_loads_its_first_frame_only(tmp_path):
    frames = [Image.new("RGB", (64, 64), (i, 0, 0)) for i in range(0, 250, 5)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    assert load_image(str(tmp_path / "anim.gif"), MediaPolicy()).getpixel((1, 1))[0] == 0


def _shaded_video(path: Path, frames: int, fps: int = 25) -> Path:
    """Frame i is a flat grey of level 4 * (i // 4 % 64), so a kept frame tells roughly where it came from."""
    return _encode_video(path, (np.full((32, 48, 3), 4 * ((i // 4) % 64), np.uint8) for i in range(frames)), (48, 32), fps)


def test_video_picks_cover_the_whole_video_and_the_note_counts_every_frame(tmp_path):
    video = _shaded_video(tmp_path / "ramp.mp4", 256)
    notes = MediaNotes()
    result = load_video(str(video), MediaPolicy(max_video_frames=5), notes)
    assert result.source_frames == 256 and len(result.frames) == 5
    levels = [np.asarray(f)[16, 24, 0] for f in result.frames]
    expected = [4 * (i // 4) for i in np.linspace(0, 255, 5).round().astype(int)]
    assert np.allclose(levels, expected, atol=6), (levels, expected)
    assert notes.warnings == [f"{video}: sampled 5 of 256 frames evenly over 10.2 s"]


def test_decode_budget_bounds_the_work_and_still_spreads_picks(tmp_path):
    frames = (np.full((32, 48, 3), i, np.uint8) for i in range(200))
    video = _encode_video(tmp_path / "one_gop.mp4", frames, (48, 32), 25, keyframe_every=1000)  # one keyframe, at the start
    policy = MediaPolicy(max_video_frames=4, video_decode_pixels=4 * 10 * 48 * 32)  # 10 frames a pick
    notes = MediaNotes()
    levels = [np.asarray(f)[16, 24, 0] for f in load_video(str(video), policy, notes).frames]
    assert np.allclose(levels, [0, 10, 20, 30], atol=6)  # each pick decoded its 10 frames on from the last
    assert "sampled 4 of 200 frames" in notes.warnings[0] and "decoding budget" in notes.warnings[0]
    exact = load_video(str(video), MediaPolicy(max_video_frames=4), MediaNotes()).frames  # the default budget reaches every pick
    assert np.allclose([np.asarray(f)[16, 24, 0] for f in exact], [0, 66, 133, 199], atol=6)


def test_video_limits_and_a_missing_video_stream_keep_their_cause(tmp_path):
    video = _shaded_video(tmp_path / "v.mp4", 50)
    with pytest.raises(UnsupportedMediaError, match="over this server's 1 s limit"):
        load_video(str(video), MediaPolicy(max_video_seconds=1), MediaNotes())
    with pytest.raises(UnsupportedMediaError, match="over 20 frames"):
        load_video(str(video), MediaPolicy(max_video_source_frames=20), MediaNotes())
    with pytest.raises(UnsupportedMediaError, match="video frame is 48x32"):
        load_video(str(video), MediaPolicy(max_image_pixels=1000), MediaNotes())
    sound_only = tmp_path / "sound.webm"
    with av.open(str(sound_only), "w") as container:
        stream = container.add_stream("libopus", rate=48_000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 960), np.float32), format="flt", layout="mono")
        frame.sample_rate = 48_000
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    with pytest.raises(UnsupportedMediaError, match="has no video stream; attach it as an audio clip instead"):
        load_video(str(sound_only), MediaPolicy(), MediaNotes())


def test_audio_is_decoded_only_as_far_as_used(tmp_path):
    path = tmp_path / "long.flac"
    rate = 44_100
    with sf.SoundFile(path, "w", rate, 2, format="FLAC") as out:
        for minute in range(20):
            out.write(np.full((rate * 60, 2), 0.01 * (minute + 1), np.float32))
    clip = read_audio(str(path), MediaPolicy())
    assert clip.cut and clip.source_seconds == pytest.approx(1200.0) and clip.seconds == pytest.approx(30.0)
    assert abs(float(np.median(clip.samples)) - 0.01) < 1e-3  # stereo averaged, not summed
    longer = read_audio(str(path), MediaPolicy(), max_seconds=90)
    assert longer.seconds == pytest.approx(90.0) and abs(float(longer.samples[-100]) - 0.02) < 1e-3


def test_policy_limits_must_be_positive():
    with pytest.raises(SettingsError, match="max_image_pixels"):
        MediaPolicy(max_image_pixels=0)
    with pytest.raises(SettingsError, match="max_audio_seconds"):
        MediaPolicy(max_audio_seconds=-1)


def test_hosts_set_the_limits_on_the_command_line(tiny, tmp_path):
    from app.launch import build_parser
    from app_fixtures import tiny_bench
    from g3n_core.knobs import media_limits

    args = build_parser().parse_args(["--max-image-pixels", "1000", "--max-audio-seconds", "90", "--max-frames", "4"])
    policy = tiny_bench(tiny, tmp_path, media_limits=media_limits(args)).policy
    assert (policy.max_image_pixels, policy.max_audio_seconds, policy.max_video_frames) == (1000, 90.0, 4)
    assert policy.allowed_roots  # still uploads and examples only
    assert build_parser().parse_args([]).max_image_pixels == MediaPolicy().max_image_pixels
