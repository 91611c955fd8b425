"""``firebreak demo`` as a person uses it: a subprocess, driven in headless Chromium.

The demo runs as ``firebreak demo --port <free> --data-dir <tmp> --no-browser``; Playwright drives
Debian's Chromium (``/usr/bin/chromium``, never a downloaded browser) through the console:
open an incident, acknowledge it, roll the service back, download the post-mortem. A screenshot
of every step lands in ``test-artifacts/demo/``. The last step stops the demo with Ctrl-C
(SIGINT) and expects a clean exit.

Without Chromium (or Playwright) the test skips (a failure in CI: tests/support/isolation.py).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = REPO / "test-artifacts" / "demo"
STARTUP_LIMIT = 30.0  # seconds until the console answers (the demo itself aims at < 5 s)
STEP_TIMEOUT = 30_000  # ms

pytestmark = pytest.mark.timeout(300)
DOWNLOADED: dict[str, str] = {}  # the post-mortem the browser downloaded, for the next test


def _browser_missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401 - only whether it is there
    except ImportError:
        return "the playwright package is missing (pip install -e '.[test]')"
    return None


_MISSING = _browser_missing()
if _MISSING:
    pytest.skip(f"browser test skipped: {_MISSING}", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _demo_command() -> list[str]:
    script = Path(sys.executable).with_name("firebreak")
    if script.exists():
        return [str(script), "demo"]
    return [sys.executable, "-m", "bot.cli", "demo"]  # a checkout without `pip install -e .`


class Demo:
    def __init__(self, process: subprocess.Popen[str], url: str, started_in: float) -> None:
        self.process = process
        self.url = url
        self.started_in = started_in
        self.output = ""

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            out, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate()
        self.output += out or ""
        return self.process.returncode


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Iterator[Demo]:
    assert not _MISSING, f"CI must run the browser test: {_MISSING}"
    port = _free_port()
    data_dir = tmp_path_factory.mktemp("demo-data")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # without Firebreak's variables (tests/support/isolation.py)
    started = time.monotonic()
    process = subprocess.Popen(
        [*_demo_command(), "--port", str(port), "--data-dir", str(data_dir), "--no-browser"],
        cwd=data_dir.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    running = Demo(process, url, 0.0)
    try:
        while True:
            if process.poll() is not None:
                running.stop()
                pytest.fail(f"firebreak demo exited with {process.returncode}:\n{running.output}")
            try:
                with urllib.request.urlopen(url + "console/health", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() - started > STARTUP_LIMIT:
                running.stop()
                pytest.fail(f"the console did not answer within {STARTUP_LIMIT}s:\n{running.output}")
            time.sleep(0.1)
        running.started_in = time.monotonic() - started
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def page(demo):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)  # files are overwritten, never the folder wiped
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1500, "height": 950}, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(STEP_TIMEOUT)
        page.errors = []  # type: ignore[attr-defined]
        page.on("pageerror", lambda error: page.errors.append(str(error)))  # type: ignore[attr-defined]
        page.goto(demo.url)
        page.wait_for_selector("body[data-ready='1']")
        try:
            yield page
        finally:
            context.close()
            browser.close()


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def type_in_composer(page, text: str) -> None:
    page.fill("#composer-input", text)
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('#composer-input').value === ''")


def incident_channel_button(page):
    return page.locator("#channel-list [data-channel-name^='inc-1-']")


def card(page):
    return page.locator("#messages .msg.pinned").filter(has=page.locator(".bk-header", has_text="INC-1"))


def expand_threads(page) -> None:
    for toggle in page.locator("#messages .thread-toggle").all():
        if "Hide" not in toggle.inner_text():
            toggle.click()


def test_01_console_comes_up_fast(demo, page):
    assert demo.started_in < STARTUP_LIMIT
    page.wait_for_selector("#channel-list [data-channel-name='general']")
    api = page.locator("#services [data-service='api']")
    assert api.get_attribute("data-healthy") == "false"  # the bad deploy is live
    shot(page, "00-console")


def test_02_incident_open_creates_the_channel_and_card(page):
    type_in_composer(page, "/incident open P1 checkout failing service:api")
    page.wait_for_selector("#ack.ok")
    shot(page, "01-command-typed")
    incident_channel_button(page).wait_for()
    incident_channel_button(page).click()
    card(page).wait_for()
    page.locator("#messages button.bk-button", has_text="Acknowledge").wait_for()
    assert "checkout failing" in card(page).inner_text()
    page.locator("#pagers [data-pager='pagerduty']").wait_for()  # PagerDuty got the page
    shot(page, "02-incident-channel-and-card")


def test_03_acknowledge_button(page):
    card(page).locator("button.bk-button", has_text="Acknowledge").click()
    page.wait_for_function(
        "() => /Acknowledged/.test(document.querySelector('#messages .msg.pinned')?.innerText || '')")
    assert card(page).locator("button", has_text="Acknowledge").count() == 0
    page.locator("#pagers [data-pager='pagerduty'] .state.acknowledged").wait_for()
    shot(page, "03-acknowledged")


def test_03b_announcement_renders_mrkdwn_and_links_back(page):
    page.locator("#channel-list [data-channel-name='incidents']").click()
    announcement = page.locator("#messages .msg", has_text="INC-1").first
    announcement.wait_for()
    assert announcement.locator("b", has_text="checkout failing").count() == 1  # *bold*
    assert announcement.locator(".mention", has_text="@ava").count() == 1  # <@U024BE7LH>
    link = announcement.locator("a.channel-link", has_text="#inc-1-checkout-failing")  # <#C…>
    shot(page, "03b-announced-in-incidents")
    link.click()
    page.wait_for_selector("#channel-header .name:has-text('#inc-1-checkout-failing')")


def test_04_rollback_confirm_reaches_live_and_passes_the_health_check(page):
    type_in_composer(page, "/rollback api")
    confirm = page.locator("#messages button.bk-button", has_text=re.compile(r"^\s*Confirm"))
    confirm.last.wait_for()
    shot(page, "04-rollback-preview")
    confirm.last.click()
    dialog = page.locator("#confirm-root .yes")
    if dialog.count():
        dialog.click()
    page.locator("#services [data-service='api'][data-healthy='true']").wait_for(timeout=60_000)
    page.locator("#requests [data-target='render']").first.wait_for()
    deadline = time.monotonic() + 60
    while True:  # the bot reports progress in the channel (and its thread)
        expand_threads(page)
        text = page.locator("#messages").inner_text().lower()
        if "live" in text and re.search(r"health[^\n]*(passed|answered 200|healthy)|succeeded", text):
            break
        assert time.monotonic() < deadline, f"no live + health check in the channel:\n{text[-2000:]}"
        page.wait_for_timeout(500)
    shot(page, "05-rollback-live-and-healthy")


def test_04b_the_status_line_names_the_whole_command_and_reads_as_success(page):
    command = "/incident note Error rate back to normal, the newest event"
    type_in_composer(page, command)
    status = page.locator("#ack")
    page.wait_for_function("(c) => document.querySelector('#ack').textContent.includes(c)", arg=command)
    assert status.get_attribute("class") == "ok", status.inner_text()
    assert status.inner_text().startswith(f"Delivered “{command}”")
    shot(page, "05b-status-line")


def test_04c_the_timeline_reply_holds_the_newest_event(page):
    type_in_composer(page, "/incident timeline")
    reply = page.locator("#messages .msg.ephemeral", has_text="Timeline of INC-1").last
    reply.wait_for()
    sections = reply.locator(".bk-section")
    last_line = sections.nth(sections.count() - 1).inner_text().strip().splitlines()[-1]
    assert "Error rate back to normal, the newest event" in last_line, last_line
    assert "Note" in last_line and "page_delivered" not in reply.inner_text()
    reply.scroll_into_view_if_needed()
    shot(page, "05c-timeline-reply")


def test_04d_the_channel_shows_each_topic_once(page):
    topics = [t.strip() for t in page.locator("#messages .msg.system", has_text="set the channel topic").all_inner_texts()]
    assert topics and len(topics) == len(set(topics)), topics


def _download_post_mortem(page) -> str:
    files_before = page.locator("#messages a.fname[data-file]").count()
    type_in_composer(page, "/incident export md")
    link = page.locator("#messages a.fname[data-file]")
    page.wait_for_function(f"() => document.querySelectorAll('#messages a.fname[data-file]').length > {files_before}")
    with page.expect_download() as download_info:
        link.last.click()
    download = download_info.value
    assert download.suggested_filename.endswith(".md")
    target = ARTIFACTS / download.suggested_filename
    download.save_as(str(target))
    DOWNLOADED["md"] = Path(download.path()).read_text(encoding="utf-8")
    return DOWNLOADED["md"]


def test_05_post_mortem_downloads_as_markdown(page):
    markdown = _download_post_mortem(page)
    shot(page, "06-post-mortem-exported")
    assert markdown.startswith("# INC-1")
    assert "checkout failing" in markdown
    assert re.search(r"acknowledged", markdown, re.IGNORECASE)
    assert "pagerduty" in markdown.lower()


def test_05b_the_export_reply_links_the_post_mortem_and_it_opens(page):
    reply = page.locator("#messages .msg.ephemeral", has_text="uploaded").last
    reply.wait_for()
    link = reply.locator("a", has_text="Read the post-mortem of INC-1 on the web")
    assert link.count() == 1, reply.inner_text()
    with page.context.expect_page() as opened:
        link.click()
    post_mortem = opened.value
    post_mortem.wait_for_load_state()
    assert post_mortem.locator("h1").inner_text() == "INC-1: checkout failing — post-mortem"
    assert "token=" not in post_mortem.url  # signed in by the console, the token gone from the address
    assert post_mortem.locator("#rollbacks tr.rollback").count() == 1
    post_mortem.screenshot(path=str(ARTIFACTS / "06b-post-mortem-from-the-link.png"), full_page=True)
    post_mortem.close()


def test_05c_the_markdown_view_has_no_mojibake(page):
    files = page.locator("#messages .file").filter(has=page.locator("a[download='INC-1-postmortem.md']"))
    view = files.last.locator("a", has_text="view")
    with page.context.expect_page() as opened:
        view.click()
    markdown = opened.value
    markdown.wait_for_load_state()
    text = markdown.locator("body").inner_text()
    assert text.startswith("# INC-1: checkout failing — post-mortem"), text[:200]
    assert "â€" not in text and "Ã" not in text
    assert "✅" in text and ":white_check_mark:" not in text
    markdown.screenshot(path=str(ARTIFACTS / "06c-markdown-view.png"))
    markdown.close()


def test_06_post_mortem_lists_the_rollback_and_health_check(page):
    markdown = DOWNLOADED.get("md") or _download_post_mortem(page)
    rollbacks = markdown.split("## Rollbacks", 1)[-1].split("\n## ", 1)[0]
    assert "No rollbacks" not in rollbacks and "api" in rollbacks and "succeeded" in rollbacks
    assert re.search(r"health", markdown, re.IGNORECASE)


def test_07_no_script_errors_in_the_page(page):
    assert page.errors == []  # type: ignore[attr-defined]


def test_08_ctrl_c_stops_cleanly(demo):
    code = demo.stop(signal.SIGINT)
    assert code == 0, demo.output
    assert "Traceback" not in demo.output, demo.output
    assert "Console" in demo.output and "Stopped." in demo.output
    match = re.search(r"ready in ([\d.]+) s", demo.output)
    assert match and float(match.group(1)) < 10, demo.output
    (ARTIFACTS / "demo-output.txt").write_text(demo.output, encoding="utf-8")
