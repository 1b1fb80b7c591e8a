"""The page in headless Chromium (Debian's package; Playwright never downloads a browser).

Screenshots go to artifacts/screenshots/ (git-ignored) for people to look at.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from app_fixtures import running_app, tiny_bench

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"


@pytest.fixture(scope="module")
def url(tiny, tmp_path_factory):
    with running_app(tiny_bench(tiny, tmp_path_factory.mktemp("runs"))) as address:
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


def _set_number(page, elem_id: str, value: int) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def test_chat_with_an_image_streams_a_reply_with_stats(page):
    assert "Random weights" in page.locator("#weights-banner").inner_text()
    _set_number(page, "max-new-tokens", 60)
    page.get_by_text("Image: shapes and colours").click()
    page.locator("#chat-input img, #chat-input [data-testid='image']").first.wait_for(timeout=20_000)
    page.locator("#chat-input textarea").press("Enter")

    bot = page.locator("#chatbot .message.bot").first
    bot.wait_for(timeout=60_000)
    lengths: list[int] = []
    deadline = time.time() + 90
    while not page.get_by_text("prompt tokens").count():
        lengths.append(len(bot.inner_text()))
        assert time.time() < deadline, "the reply never finished"
        time.sleep(0.03)
    page.screenshot(path=str(SHOTS / "chat.png"), full_page=True)
    partial = sorted({n for n in lengths if n > 0})
    assert len(partial) >= 2, f"the reply arrived in one piece, not streamed: {lengths}"
    assert page.locator("#chatbot .message.user img").count() >= 1  # the image shows in the user's turn
    stats = page.get_by_text("prompt tokens").first.inner_text()
    assert "first token" in stats and "tokens/s" in stats



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
    """Leave exactly `wanted` ticked in a CheckboxGroup."""
    for box in page.locator(f"#{group_id} label").all():
        name = box.inner_text().strip()
        checkbox = box.locator("input[type=checkbox]")
        if checkbox.is_checked() != any(name.startswith(w) for w in wanted):
            checkbox.click()


def test_two_variant_comparison_shows_progress_then_charts(page):
    page.get_by_role("tab", name="📊 Compare").click()
    assert len(page.locator("#compare-variants .token").all()) == 2  # the launch variant and one change of it
    _only(page, "compare-tasks", ["builtin_mc"])
    _only(page, "compare-measures", ["latency"])
    _set_number(page, "compare-limit", 2)
    _set_number(page, "compare-repeats", 1)
    page.locator("#compare-run").click()
    page.locator(".progress-text, .progress-level, .eta-bar").first.wait_for(timeout=30_000)
    saw_progress = page.locator(".progress-level-inner").count() > 0 or page.locator(".progress-text").count() > 0
    chart = page.locator("#chart-accuracy_vs_decode .js-plotly-plot")
    chart.wait_for(timeout=180_000)
    time.sleep(1)
    page.screenshot(path=str(SHOTS / "compare.png"), full_page=True)
    assert saw_progress
    assert "Pareto front" in chart.inner_text()
    assert page.locator("#compare-table").inner_text().count("tiny") >= 2
    files = page.locator("#compare-files").inner_text().replace("\n", "")
    assert "results.csv" in files and "results.json" in files
    assert not page.locator("#chart-memory .js-plotly-plot").is_visible()  # memory was not measured: no empty chart


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
