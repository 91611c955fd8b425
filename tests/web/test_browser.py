"""A real browser (headless Chromium through Playwright) on the incident page.

Uses Debian's ``chromium`` at /usr/bin/chromium (no browser download). Without it
the test is skipped with a message (a failure in CI: tests/support/isolation.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.export.scripted import LEAKED, script_incident
from tests.support.bed import start_bed, stop_bed
from tests.web.conftest import TOKEN

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = ("Chromium is not installed at /usr/bin/chromium: "
               "apt-get update && apt-get install -y chromium")
    pytest.skip(message)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_browser_sees_the_svg_timeline_and_downloads_the_markdown(database_url, tmp_path):
    _require_chromium()
    from playwright.async_api import async_playwright

    bed = await start_bed(database_url, settings_overrides={"web_auth_token": TOKEN})
    try:
        run = await script_incident(bed.rt.sessions, bed.clock)
        base = str(bed.server.make_url("/")).rstrip("/")
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            try:
                context = await browser.new_context(accept_downloads=True)
                page = await context.new_page()
                denied = await page.goto(f"{base}/incidents/INC-{run.number}")
                assert denied.status == 401
                assert "Sign-in needed" in await page.content()

                # once with ?token=: the cookie keeps the browser signed in
                await page.goto(f"{base}/incidents/INC-{run.number}?token={TOKEN}")
                assert page.url == f"{base}/incidents/INC-{run.number}"
                timeline = page.locator("svg#timeline")
                await timeline.wait_for(state="visible")
                box = await timeline.bounding_box()
                assert box["width"] > 500 and box["height"] > 80
                for phase in ("open", "acknowledged", "mitigated", "resolved"):
                    assert await page.locator(f"svg#timeline [data-phase={phase}]").count() == 1
                assert await page.locator("svg#timeline .mark-rollback").count() >= 1
                assert await page.locator("table#events tr.event").count() == len(run.expected)
                assert "ben" in await page.locator("#facts").inner_text()

                async with page.expect_download() as waiting:
                    await page.click("#download-md")
                download = await waiting.value
                assert download.suggested_filename == f"INC-{run.number}-postmortem.md"
                saved = tmp_path / download.suggested_filename
                await download.save_as(saved)
                text = saved.read_text()
                assert text.startswith(f"# INC-{run.number}: Checkout is failing — post-mortem")
                assert "## Timeline" in text and LEAKED not in text

                await page.goto(f"{base}/incidents?state=resolved")
                assert await page.locator("tr.incident").count() == 1
            finally:
                await browser.close()
    finally:
        await stop_bed(bed)
