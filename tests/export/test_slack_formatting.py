"""Slack mrkdwn stays in Slack; every export shows the same text as clean Markdown or HTML.

Signed ``/incident`` commands in, the fake Slack and the GitHub issues fake out, the web pages
over HTTP: the text people typed is checked in the Markdown, HTML, JSON and GitHub exports
and on the web page.
"""

from __future__ import annotations

import json
import re

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.emulator.github_issues import GitHubIssuesFake
from bot.export.mrkdwn import convert
from bot.export.names import Names
from tests.support.bed import start_bed, stop_bed

BEN = "U0G9QF9C6"
TOKEN = "web-token-0123456789abcdef"
NOTE = (f":white_check_mark: *api* is back after the ~bad~ deploy: see <https://grafana.example.com/d/abc?x=1&amp;y=2|the "
        f"dashboard> and <#C0GENERAL>, thanks <@{BEN}> :tada: (`pool_size` 40 → 80, _for now_)")
SLACK_LEFTOVERS = (":white_check_mark:", ":tada:", "<https://", "<@U", "<#C", "&amp;", "|the dashboard>")


@pytest.fixture
async def github():
    async with GitHubIssuesFake(repos=["acme/postmortems"]) as fake:
        yield fake


@pytest.fixture
async def full_bed(database_url, github):
    bed = await start_bed(database_url, settings_overrides={
        "github_api_url": github.api_url, "github_token": github.token, "postmortem_github_repo": "acme/postmortems",
        "web_auth_token": TOKEN, "public_base_url": "https://firebreak.example.com"})
    try:
        yield bed
    finally:
        await stop_bed(bed)
    assert not bed.emu.violations, bed.emu.violations


async def _incident_with_a_formatted_note(bed) -> str:
    assert "INC-1 opened" in await bed.run_command("open P1 checkout is failing service:api")
    await bed.run_jobs()
    channel = bed.incident_channel(1).id
    assert "Status update posted" in await bed.run_command(f"status {NOTE}", channel=channel)
    await bed.run_jobs()
    return channel


def _no_slack_syntax(text: str) -> None:
    for leftover in SLACK_LEFTOVERS:
        assert leftover not in text, leftover


async def test_mrkdwn_stays_in_slack_and_every_export_renders_it_cleanly(full_bed, github):
    bed = full_bed
    channel = await _incident_with_a_formatted_note(bed)

    # In Slack the status update is mrkdwn, as typed.
    posted = [m.text for m in bed.emu.messages(channel)]
    assert any("*api* is back" in text and "<@U0G9QF9C6>" in text for text in posted), posted

    for fmt in ("md", "html", "json"):
        await bed.run_command(f"export {fmt}", channel=channel)
    markdown, page, document = (f.content.decode("utf-8") for f in bed.emu.files)

    row = next(line for line in markdown.splitlines() if "is back after" in line)
    assert ("✅ **api** is back after the ~~bad~~ deploy: see "
            "[the dashboard](https://grafana.example.com/d/abc?x=1&y=2) and #general, thanks @ben 🎉 "
            "(`pool_size` 40 → 80, *for now*)") in row, row
    _no_slack_syntax(markdown)

    assert ("✅ <strong>api</strong> is back after the <del>bad</del> deploy: see "
            '<a href="https://grafana.example.com/d/abc?x=1&amp;y=2" rel="nofollow noopener noreferrer">'
            'the dashboard</a> and <span class="mention">#general</span>, thanks '
            '<span class="mention">@ben</span> 🎉 (<code>pool_size</code> 40 → 80, <em>for now</em>)') in page
    _no_slack_syntax(page.replace("&amp;y=2", ""))

    event = next(e for e in json.loads(document)["timeline"] if e["kind"] == "status_update")
    assert event["text"] == ("✅ api is back after the bad deploy: see the dashboard "
                             "(https://grafana.example.com/d/abc?x=1&y=2) and #general, thanks @ben 🎉 "
                             "(pool_size 40 → 80, for now)")
    assert event["text_mrkdwn"] == NOTE  # the raw text, as Slack had it

    assert "Post-mortem issue opened" in await bed.run_command("export github", channel=channel)
    body = github.issues("acme/postmortems")[0]["body"]
    assert "✅ **api** is back after the ~~bad~~ deploy" in body and "[the dashboard](https://grafana" in body
    _no_slack_syntax(body)

    async with aiohttp.ClientSession() as http, http.get(
            str(bed.server.make_url("/incidents/INC-1")), headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
        web_page = await resp.text()
    assert resp.status == 200
    assert "✅ <strong>api</strong> is back" in web_page and '<span class="mention">@ben</span>' in web_page
    _no_slack_syntax(web_page.replace("&amp;y=2", ""))


async def test_the_post_mortem_shows_firebreak_own_lines_without_emoji_codes(full_bed):
    bed = full_bed
    channel = await _incident_with_a_formatted_note(bed)
    await bed.run_command("resolve :rocket: *fixed* by raising the pool", channel=channel)
    await bed.run_jobs()
    await bed.run_command("export md", channel=channel)
    markdown = bed.emu.files[-1].content.decode("utf-8")
    assert "🚀 **fixed** by raising the pool" in markdown  # the summary, and its timeline line
    assert ":rocket:" not in markdown and not any(f":{name}:" in markdown for name in ("eyes", "mega"))


# --- the converter itself: properties over any text ------------------------------------------

PIECES = st.sampled_from(["*", "_", "~", "`", "```", "<", ">", "|", "&amp;", "&lt;", ":", "\n", " ", "[", "]",
                          "(", ")", "#", "\\", "<@U1>", "<#C1|ops>", "<!here>", "<https://x.example/a_b|x>",
                          "<javascript:alert(1)|y>", ":tada:", ":nope:", "word", "*bold*", "_it_", "<script>"])
TEXTS = st.lists(st.one_of(PIECES, st.text(max_size=5)), max_size=30).map("".join)
OUR_TAGS = re.compile(r'</?(?:strong|em|del|code|pre|br|span(?: class="mention")?)>|<a href="(?:https?|mailto):[^"<>]*" '
                      r'rel="nofollow noopener noreferrer">|</a>')


@settings(max_examples=400, deadline=None)
@given(TEXTS)
def test_any_text_converts_to_safe_html_and_markdown(text):
    rich = convert(text, Names({"U1": "ava"}, {"C1": "ops"}))
    assert "<" not in OUR_TAGS.sub("", str(rich.html))  # nothing but our own tags
    assert "javascript:" not in str(rich.html).split("</a>")[0].split('href="')[-1][:11]
    outside_code = re.sub(r"(`+)(.+?)\1", "", rich.markdown)
    assert "<" not in outside_code.replace("\\<", "")  # no raw HTML in the Markdown
    assert "\n" not in rich.markdown and "\n" not in rich.markdown_cell
    assert "|" not in rich.markdown_cell.replace("\\|", "")  # a table cell stays one cell
    assert "<@U1>" not in rich.plain
