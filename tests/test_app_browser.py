"""The page in headless Chromium (Debian's package; Playwright never downloads a browser).

Screenshots go to artifacts/screenshots/ (git-ignored) for people to look at.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from app_fixtures import running_app, tiny_bench

from app.compare import task_choices
from evals.tasks import resolve_tasks

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"


@pytest.fixture(scope="module")
def url(tiny, tmp_path_factory):
    bench = tiny_bench(tiny, tmp_path_factory.mktemp("runs"))
    bench.cache.budget_bytes = 4 * 2**30  # the same on every machine: tiny fits, e4b-shape never does
    with running_app(bench) as address:
        yield address


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: run bash scripts/setup.sh --dev (it installs Debian's chromium)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                # Chromium's built-in test camera and microphone, granted without a prompt
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, url):
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, permissions=["camera", "microphone"])
    page.goto(url)
    page.wait_for_selector("#chatbot", timeout=60_000)
    yield page
    page.close()


def _record_reply_lengths(page) -> None:
    """Record the first bot message's text length on every change before its stats show, in the page itself.

    Polling it from Python takes a round trip per sample; on one busy core a short reply ends
    before the second sample, and a streamed reply would read as one piece.
    """
    page.evaluate(
        """() => {
            window.replyLengths = [];
            const root = document.querySelector('#chatbot');
            new MutationObserver(() => {
                const bot = root.querySelector('.message.bot');
                // until the stats show: a reply sent whole and then its stats would read as two pieces
                if (bot && !bot.innerText.includes('prompt tokens')) window.replyLengths.push(bot.innerText.length);
            }).observe(root, {subtree: true, childList: true, characterData: true});
        }"""
    )


def _set_number(page, elem_id: str, value: int) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def test_chat_with_an_image_streams_a_reply_with_stats(page):
    assert "Random weights" in page.locator("#weights-banner").inner_text()
    _set_number(page, "max-new-tokens", 60)
    page.get_by_text("Image: shapes and colours").click()
    page.locator("#chat-input img, #chat-input [data-testid='image']").first.wait_for(timeout=20_000)
    _record_reply_lengths(page)
    page.locator("#chat-input textarea").press("Enter")

    page.get_by_text("prompt tokens").first.wait_for(timeout=90_000)
    page.screenshot(path=str(SHOTS / "chat.png"), full_page=True)
    lengths = page.evaluate("() => window.replyLengths")
    partial = sorted({n for n in lengths if n > 0})
    assert len(partial) >= 2, f"the reply arrived in one piece, not streamed: {lengths}"
    assert page.locator("#chatbot .message.user img").count() >= 1  # the image shows in the user's turn
    stats = page.get_by_text("prompt tokens").first.inner_text()
    assert "first token" in stats and "tokens/s" in stats



def test_video_example_is_answered_with_its_sound_and_the_sound_can_be_turned_off(page):
    from app.examples import example_files

    _set_number(page, "max-new-tokens", 4)
    page.get_by_text("Video with sound: what happens?").click()  # examples show only while the chat is empty
    page.locator("#chat-input .thumbnail-item, #chat-input video").first.wait_for(timeout=20_000)
    page.locator("#chat-input textarea").press("Enter")
    page.get_by_text("prompt tokens").first.wait_for(timeout=90_000)
    page.locator("#video-sound input[type=checkbox]").uncheck()  # the next turn sends frames only
    page.locator("#chat-input input[type=file]").set_input_files(str(example_files()["video"]))
    page.locator("#chat-input .thumbnail-item, #chat-input video").first.wait_for(timeout=20_000)
    box = page.locator("#chat-input textarea")
    box.fill("And without its sound?")
    box.press("Enter")
    page.get_by_text("prompt tokens").nth(1).wait_for(timeout=90_000)
    with_sound, silent = (page.get_by_text("prompt tokens").nth(i).inner_text() for i in (0, 1))
    assert "8 video frames" in with_sound and "s of audio" in with_sound
    assert "16 video frames" in silent and "s of audio" not in silent  # both turns' videos, neither one's sound
    page.screenshot(path=str(SHOTS / "video_sound.png"), full_page=True)


def test_stop_button_ends_a_long_reply_and_the_chat_keeps_working(page):
    _set_number(page, "max-new-tokens", 1900)
    box = page.locator("#chat-input textarea")
    box.fill("Tell me a very long story")
    box.press("Enter")
    bot = page.locator("#chatbot .message.bot").first
    bot.wait_for(timeout=60_000)
    page.locator("#chat-input .stop-button").click()
    stats = page.get_by_text("prompt tokens").first
    stats.wait_for(timeout=20_000)  # far sooner than 1900 tokens: the reply ended where it was stopped
    assert "stopped" in stats.inner_text()
    stopped_at = len(bot.inner_text())
    time.sleep(1.0)
    assert len(bot.inner_text()) == stopped_at, "the reply kept streaming after stop"
    _set_number(page, "max-new-tokens", 4)
    box.fill("And a short one")
    box.press("Enter")
    page.get_by_text("prompt tokens").nth(1).wait_for(timeout=60_000)  # the model was free again
    assert page.locator("#chatbot .message.user").count() == 2


def test_webcam_snapshot_is_attached_and_answered(page):
    _set_number(page, "max-new-tokens", 4)
    page.locator("#webcam").get_by_text("Webcam").first.click()
    camera = page.locator("#webcam-image")
    camera.get_by_text("Click to Access Webcam").click()
    # capture only once the fake camera streams frames: a click before that captures nothing
    page.wait_for_function(
        "() => { const v = document.querySelector('#webcam-image video'); return v && v.readyState >= 2 && v.videoWidth > 0; }",
        timeout=20_000,
    )
    camera.locator("[aria-label='capture photo'], [title='capture photo']").first.click()  # a frame of Chromium's fake camera
    camera.locator("img[src]").first.wait_for(timeout=20_000)
    page.locator("#webcam-attach").click()
    page.locator("#chat-input img").first.wait_for(timeout=20_000)
    box = page.locator("#chat-input textarea")
    box.fill("What do you see?")
    box.press("Enter")
    page.get_by_text("prompt tokens").first.wait_for(timeout=60_000)
    user = page.locator("#chatbot .message.user").first
    assert user.locator("img").count() == 1 and "What do you see?" in user.inner_text()
    page.screenshot(path=str(SHOTS / "webcam.png"), full_page=True)


def _only(page, group_id: str, wanted: list[str]) -> None:
    """Leave exactly the choices labelled `wanted` ticked in a CheckboxGroup."""
    for box in page.locator(f"#{group_id} label").all():
        name = box.inner_text().strip()
        checkbox = box.locator("input[type=checkbox]")
        if checkbox.is_checked() != (name in wanted):
            checkbox.click()


HEADER_STYLES = """() => Array.from(document.querySelectorAll('#compare-table th')).flatMap(th =>
    Array.from(th.querySelectorAll('*')).concat([th]).filter(el => el.childNodes.length && Array.from(el.childNodes).some(n => n.nodeType === 3 && n.textContent.trim()))
    .map(el => { const cs = getComputedStyle(el); return {text: el.textContent.trim(), wordBreak: cs.wordBreak, overflowWrap: cs.overflowWrap,
                                                          overflows: el.scrollWidth > el.clientWidth + 1}; }))"""


def _pick(page, elem_id: str, option: str) -> None:
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def test_three_variant_comparison_shows_verdict_table_charts_and_disagreements(page):
    page.get_by_role("tab", name="📊 Compare").click()
    assert not page.locator("#compare-results").is_visible()  # nothing to show before a run
    assert len(page.locator("#compare-variants .token").all()) == 2  # the launch variant and one change of it
    spec = page.get_by_placeholder("tiny attn=eager sparsity=0.9@0-4 towers=text")
    spec.fill("tiny attn=bogus")
    spec.press("Enter")
    page.get_by_text("Variant.attn").first.wait_for(timeout=20_000)  # a bad spec: a clear message, nothing added
    assert len(page.locator("#compare-variants .token").all()) == 2
    spec.fill("tiny sparsity=off")
    spec.press("Enter")
    page.locator("#compare-variants .token").nth(2).wait_for(timeout=20_000)
    builtin = {task.name for task in resolve_tasks(["builtin"])}  # the five built-in suites, not the slower media ones
    _only(page, "compare-tasks", [label for label, name in task_choices() if name in builtin])
    _only(page, "compare-measures", ["latency"])
    _set_number(page, "compare-limit", 2)
    _set_number(page, "compare-repeats", 2)
    page.locator("#compare-run").click()
    page.locator(".progress-text, .progress-level, .eta-bar").first.wait_for(timeout=30_000)
    assert page.locator(".progress-text, .progress-level").count() <= 2  # one progress bar for the run, not one per output
    verdict = page.locator("#compare-verdict")
    verdict.get_by_text("Verdict (baseline:").wait_for(timeout=240_000)
    chart = page.locator("#chart-accuracy_vs_decode .js-plotly-plot")
    chart.wait_for(timeout=30_000)
    text = verdict.inner_text()
    lines = [line for line in text.splitlines() if " vs tiny sdpa fp32: " in line]
    assert len(lines) == 2 and all("decode x" in line and "builtin_mc acc (n=2" in line for line in lines), text
    assert "Pareto front" in chart.inner_text()
    headers = page.locator("#compare-table th").all_inner_texts()
    assert any("builtin_mc acc ↑" in h for h in headers) and any("decode tokens/s ↑" in h for h in headers)
    # header words are never split mid-word, and no header text overflows its column
    styles = page.evaluate(HEADER_STYLES)
    print(styles)
    assert styles and all(s["wordBreak"] != "break-all" and s["overflowWrap"] not in ("anywhere", "break-word") and not s["overflows"] for s in styles), styles
    assert not page.locator("#chart-memory .js-plotly-plot").is_visible()  # memory was not measured: no empty chart
    files = page.locator("#compare-files").inner_text().replace("\n", "")
    assert "results.csv" in files and "results.json" in files and "verdict.md" in files

    # the disagreement explorer: the launch variant against sparsity off on the image questions
    _pick(page, "diff-b", "tiny sdpa fp32 sp:off")
    _pick(page, "diff-task", "builtin_image_qa")
    summary = page.locator("#compare-explorer #diff-summary")
    summary.get_by_text("differing examples on builtin_image_qa").wait_for(timeout=30_000)
    assert page.locator("#compare-explorer img").count() >= 1  # thumbnails of the questions' images
    assert "A: tiny sdpa fp32" in page.locator("#compare-explorer th").all_inner_texts()[3]
    page.locator("#compare-diff").scroll_into_view_if_needed()
    time.sleep(1)
    page.screenshot(path=str(SHOTS / "compare.png"), full_page=True)
    page.locator("#diff-only").get_by_text("B right / A wrong").click()
    page.wait_for_function("() => !document.querySelector('#compare-explorer').innerText.includes('differing examples on builtin_image_qa: A better')"
                           " || document.querySelector('#compare-explorer').innerText.includes('No differing')", timeout=30_000)  # fmt: skip
    page.set_viewport_size({"width": 400, "height": 860})  # on a phone the charts (shown once a run exists) stack
    directions = page.evaluate(CHART_ROWS)
    assert directions and set(directions) == {"column"}, directions


def test_matformer_tab_shows_a_lab_preset_for_e4b(page):
    page.get_by_role("tab", name="🪆 MatFormer").click()
    page.get_by_label("Parent model").fill("e4b-shape")
    page.get_by_label("Parent model").press("Enter")
    page.get_by_text("35 of 35 layers").wait_for(timeout=120_000)
    page.get_by_label("Start from preset").click()
    page.get_by_role("option", name="E2B", exact=True).click()
    page.locator("#slice-summary").get_by_text("E2B").first.wait_for(timeout=60_000)
    time.sleep(1)
    page.screenshot(path=str(SHOTS / "matformer.png"), full_page=True)
    summary = page.locator("#slice-summary").inner_text()
    assert "30 of 35 layers" in summary and "MMLU 50.9" in summary


def test_matformer_tab_finds_the_best_slice_under_a_budget(page):
    page.get_by_role("tab", name="🪆 MatFormer").click()
    page.get_by_text("Find the best slice under a budget").click()
    page.locator("#slice-search-params textarea, #slice-search-params input").first.fill("many")
    page.locator("#slice-search-run").click()
    page.get_by_text("cannot read").first.wait_for(timeout=60_000)  # a bad budget: a clear message, then a good run
    page.locator("#slice-search-params textarea, #slice-search-params input").first.fill("1.7M")  # tiny: 1.76M effective; one block a width narrower fits
    _set_number(page, "slice-search-evals", 3)
    _set_number(page, "slice-search-examples", 1)
    page.locator("#slice-search-run").click()
    page.locator("#slice-search-summary").get_by_text("Best under the budget").wait_for(timeout=240_000)
    time.sleep(1)
    page.screenshot(path=str(SHOTS / "slice-search.png"), full_page=True)
    assert "matformer slice --model tiny" in page.locator("#slice-search-summary").inner_text()


def test_a_model_too_large_shows_its_estimate_and_cannot_be_loaded(page):
    from playwright.sync_api import expect

    page.locator("#model-panel").get_by_text("Model and variant").click()
    fit, load = page.locator("#model-fit"), page.get_by_role("button", name="Load", exact=True)
    page.get_by_text("Needs about").wait_for(timeout=30_000)  # the launch model's estimate, before anything
    expect(load).to_be_enabled()
    model = page.get_by_label("Model", exact=True)
    model.fill("e4b-shape")
    model.press("Enter")
    page.get_by_text("Too large for this server").wait_for(timeout=60_000)
    page.screenshot(path=str(SHOTS / "model-too-large.png"), full_page=True)
    assert "budget of 4.00 GiB" in fit.inner_text() and "would fit" in fit.inner_text()
    expect(load).to_be_disabled(timeout=10_000)
    model.fill("tiny")  # and back: the estimate follows, Load works again
    model.press("Enter")
    page.get_by_text("Needs about").wait_for(timeout=60_000)
    expect(load).to_be_enabled(timeout=10_000)  # the button's update lands just after the text's


# -- a failed turn never locks the page ---------------------------------------------------------------


def _watch_server_errors(page) -> list[int]:
    """HTTP statuses >= 500 the page receives (an event that failed on the server)."""
    failures: list[int] = []
    page.on("response", lambda response: failures.append(response.status) if response.status >= 500 else None)
    return failures


def _attach(page, *paths: Path) -> None:
    page.locator("#chat-input input[type=file]").set_input_files([str(p) for p in paths])
    page.wait_for_function(f"() => document.querySelectorAll('#chat-input .thumbnail-wrapper').length === {len(paths)}", timeout=20_000)


def _send(page, text: str) -> None:
    box = page.locator("#chat-input textarea")
    box.fill(text)
    box.press("Enter")


def _replies(page) -> int:
    return page.get_by_text("prompt tokens").count()


def _wait_replies(page, count: int) -> None:
    page.wait_for_function(f"() => [...document.querySelectorAll('#chatbot *')].filter(e => e.children.length === 0 && "
                           f"e.textContent.includes('prompt tokens')).length >= {count}", timeout=90_000)


def _refused(page, needle: str, text: str, files: int, replies: int) -> str:
    """After a refused turn: the message is shown, the turn is off the page, text and attachments are back, the box works."""
    toast = page.get_by_text(needle).first
    toast.wait_for(timeout=60_000)
    shown = toast.inner_text()
    box = page.locator("#chat-input textarea")
    page.wait_for_function("() => !document.querySelector('#chat-input textarea').disabled", timeout=20_000)
    assert box.input_value() == text and box.is_editable()
    assert page.locator("#chat-input .thumbnail-wrapper").count() == files
    assert _replies(page) == replies and page.locator("#chatbot .message.user").count() == replies  # the failed turn is gone
    assert "/tmp/gradio" not in shown and "gradio_api" not in shown
    page.locator("[data-testid=toast-close], .toast-close").first.click() if page.locator("[data-testid=toast-close], .toast-close").count() else None
    return shown


def test_failed_turns_give_back_the_message_and_the_next_one_works(page, media, tmp_path):
    failures = _watch_server_errors(page)
    _set_number(page, "max-new-tokens", 6)
    corrupt = tmp_path / "x.png"
    corrupt.write_bytes(bytes(range(256)) * 8)

    _attach(page, corrupt)
    _send(page, "What is this?")
    _refused(page, "x.png: not a readable image", "What is this?", files=1, replies=0)
    page.screenshot(path=str(SHOTS / "failed_turn.png"), full_page=True)
    page.locator("#chat-input [aria-label='Remove file']").first.click()
    _send(page, "Hello after the bad image")
    _wait_replies(page, 1)

    _attach(page, media["audio"], media["audio_44k_stereo"])
    _send(page, "Both clips?")
    _refused(page, "at most one audio clip", "Both clips?", files=2, replies=1)
    page.locator("#chat-input [aria-label='Remove file']").first.click()
    _send(page, "Just one clip then")
    _wait_replies(page, 2)

    long_text = "word " * 2100  # more than tiny's 2048-token context on its own
    _send(page, long_text)
    _refused(page, "over the model", long_text.strip(), files=0, replies=2)
    _send(page, "A short one")
    _wait_replies(page, 3)
    page.screenshot(path=str(SHOTS / "recovered_chat.png"), full_page=True)
    assert page.locator("#chatbot .message.user").count() == 3 and failures == []


def test_max_new_tokens_at_the_slider_maximum_is_clamped_with_a_note(page):
    slider_max = page.locator("#max-new-tokens input[type=range]").get_attribute("max")
    _set_number(page, "max-new-tokens", int(slider_max))  # the whole context: the reply gets what the prompt leaves
    _send(page, "hi")
    page.get_by_text("max new tokens lowered").first.wait_for(timeout=60_000)  # said as the reply starts, not an error
    page.locator("#chat-input .stop-button").click()
    _wait_replies(page, 1)
    page.get_by_text("prompt tokens").first.click()  # the stats' details repeat it
    page.locator("#chatbot").get_by_text("max new tokens lowered").first.wait_for(timeout=10_000)
    assert slider_max == "2048"  # tiny's context


# -- the MatFormer tab answers in the page -------------------------------------------------------------


def _toggle_skip(page, layer: int) -> None:
    page.locator(f"#slice-editor [data-testid='cell-{layer}-5'] input[type=checkbox]").click()


def test_matformer_errors_show_in_the_summary_and_add_to_compare_confirms(page):
    failures = _watch_server_errors(page)
    page.get_by_role("tab", name="🪆 MatFormer").click()
    summary = page.locator("#slice-summary")
    summary.get_by_text("15 of 15 layers").wait_for(timeout=60_000)
    _toggle_skip(page, 3)
    page.locator("#slice-show").click()
    summary.get_by_text("layer 3: cannot skip it").wait_for(timeout=60_000)  # not a bare "Error": the reason, naming the layer
    assert "reuse" in summary.inner_text()
    _toggle_skip(page, 3)
    _toggle_skip(page, 7)
    page.locator("#slice-show").click()
    summary.get_by_text("14 of 15 layers").wait_for(timeout=60_000)
    page.locator("#slice-to-compare").click()
    note = page.locator("#slice-note")
    note.get_by_text("Added").wait_for(timeout=30_000)
    name = note.locator("strong").inner_text()
    assert name.startswith("tiny sdpa fp32 mf:ffn ") and name.endswith("skip 7")  # readable, not mf:custom-<hash>
    page.screenshot(path=str(SHOTS / "matformer_added.png"), full_page=True)
    page.get_by_role("tab", name="📊 Compare").click()
    assert name in page.locator("#compare-variants").inner_text()
    assert failures == []


# -- the example video plays; the page on a phone ------------------------------------------------------

PAINTED = """async (selector) => {
  const video = document.querySelector(selector);
  video.muted = true;
  await video.play().catch(() => null);
  await new Promise(done => setTimeout(done, 1000));
  const canvas = document.createElement('canvas');
  canvas.width = video.videoWidth; canvas.height = video.videoHeight;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(video, 0, 0);
  const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let green = 0;
  for (let i = 0; i < px.length; i += 4) if (px[i + 1] > px[i] + 60 && px[i + 1] > px[i + 2] + 60) green++;
  return {error: video.error && video.error.code, width: video.videoWidth, time: video.currentTime, green};
}"""


CHART_ROWS = "() => [...document.querySelectorAll('[id^=chart-]')].map(e => getComputedStyle(e.parentElement).flexDirection)"


def test_the_example_video_plays_in_the_browser(page):
    _set_number(page, "max-new-tokens", 4)
    page.get_by_text("Video with sound: what happens?").click()
    page.locator("#chat-input .thumbnail-wrapper").first.wait_for(timeout=20_000)
    page.locator("#chat-input textarea").press("Enter")
    player = "#chatbot .message.user video"
    page.locator(player).first.wait_for(timeout=60_000)
    page.wait_for_function(f"() => document.querySelector('{player}').readyState >= 2", timeout=20_000)
    state = page.evaluate(PAINTED, player)
    assert state["error"] is None and state["width"] == 96, state  # decodable: H.264, not MPEG-4 Part 2 (media error 4)
    assert state["green"] > 50, state  # a frame was painted: the green ball's pixels
    assert state["time"] > 0, state  # and it plays
    _wait_replies(page, 1)


def test_a_400px_screen_keeps_the_header_every_tab_and_stacks_the_charts(browser, url):
    page = browser.new_page(viewport={"width": 400, "height": 860})
    try:
        page.goto(url)
        page.wait_for_selector("#chatbot", timeout=60_000)
        time.sleep(1)
        assert page.evaluate("window.scrollY") == 0 and page.locator("#intro").bounding_box()["y"] >= 0  # the header in view
        page.screenshot(path=str(SHOTS / "phone_chat.png"))
        tabs = page.get_by_role("tab")
        assert tabs.all_inner_texts() == ["💬 Chat", "📊 Compare", "🪆 MatFormer"] and all(t.is_visible() for t in tabs.all())
        assert page.locator("#chatbot [data-testid=block-label]").count() == 0  # no floating badge over the replies
        sizes = page.locator("#model-sizes")
        page.locator("#model-panel").get_by_text("Model and variant").first.click()
        sizes.wait_for(timeout=10_000)
        box = sizes.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 400 + 1  # the size table fits the screen
        page.locator("#model-load").click()
        page.locator("#model-load-note").get_by_text("Loaded").wait_for(timeout=60_000)  # confirmed beside the button
        page.get_by_role("tab", name="📊 Compare").click()
        page.locator("#compare-run").wait_for(timeout=10_000)
        assert page.evaluate("document.documentElement.scrollWidth") <= 400 + 1  # nothing wider than the screen (charts: after a run)
        page.get_by_role("tab", name="🪆 MatFormer").click()
        page.locator("#slice-summary").wait_for(timeout=30_000)
        page.screenshot(path=str(SHOTS / "phone_matformer.png"), full_page=True)
    finally:
        page.close()
