"""``/incident followup`` and ``/incident export`` end to end: signed requests in, fake Slack out."""

from __future__ import annotations

import json

import pytest

from bot.emulator.github_issues import GitHubIssuesFake
from bot.export import service as exports
from bot.incidents import service as incidents
from tests.support.bed import REPORTER, start_bed, stop_bed

BEN = "U0G9QF9C6"


async def _open(bed) -> tuple[int, str]:
    reply = await bed.run_command("open P1 checkout is failing service:api")
    assert "INC-1 opened" in reply, reply
    channel = bed.incident_channel(1)
    return 1, channel.id


async def test_followup_then_export_uploads_the_file_to_the_incident_channel(bed):
    number, channel = await _open(bed)
    reply = await bed.run_command(f"followup Add a canary for checkout <@{BEN}|ben>",
                                  channel=channel)
    assert reply.startswith("Follow-up #1 added to INC-1 (owner <@U0G9QF9C6>)"), reply
    reply = await bed.run_command("followup INC-1 Page the payments team sooner")
    assert "Follow-up #2 added to INC-1" in reply
    async with bed.rt.sessions() as session:
        incident = await incidents.get_incident(session=session, number=number)
        items = await exports.list_followups(session=session, incident=incident)
        kinds = [e.kind for e in await incidents.timeline(session=session, incident=incident)]
    assert [(f.text, f.owner_id, f.created_by) for f in items] == [
        ("Add a canary for checkout", BEN, REPORTER),
        ("Page the payments team sooner", None, REPORTER)]
    assert kinds.count("followup") == 2

    reply = await bed.run_command("export", channel=channel)
    assert reply == f"Post-mortem of INC-1 uploaded to <#{channel}> as `INC-1-postmortem.md`."
    files = bed.emu.files
    assert [f.name for f in files] == ["INC-1-postmortem.md"]
    text = files[0].content.decode()
    assert text.startswith("# INC-1: checkout is failing — post-mortem")
    assert "- [ ] Add a canary for checkout — owner: ben" in text
    assert "| Reporter | ava |" in text  # users.info, not the id
    assert bed.rt.settings.slack_bot_token.get_secret_value() not in text
    assert bed.emu.calls_to("files.getUploadURLExternal")
    shared = bed.emu.calls_to("files.completeUploadExternal")[-1]
    assert shared.params["channel_id"] == channel

    reply = await bed.run_command("export INC-1 json")  # from another channel: still the incident's
    assert "uploaded to <#" + channel in reply
    document = json.loads(bed.emu.files[-1].content)
    assert document["schema_version"] == "2.0"
    assert [f["text"] for f in document["followups"]] == [
        "Add a canary for checkout", "Page the payments team sooner"]

    await bed.run_command("export html", channel=channel)
    page = bed.emu.files[-1]
    assert page.name == "INC-1-postmortem.html"
    assert b'id="timeline"' in page.content and b"Add a canary for checkout" in page.content


async def test_bad_followups_and_exports_say_what_is_wrong(bed):
    _, channel = await _open(bed)
    assert "A follow-up needs some text." in await bed.run_command("followup", channel=channel)
    assert "Choose one format: md, json, html, github." in await bed.run_command(
        "export pdf", channel=channel)
    reply = await bed.run_command("export")  # in #general: no incident here
    assert "not an incident channel" in reply
    reply = await bed.run_command("export github", channel=channel)
    assert "POSTMORTEM_GITHUB_REPO is not set" in reply
    assert bed.emu.files == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_export_github_opens_then_updates_one_issue_and_posts_the_link(database_url):
    async with GitHubIssuesFake(repos=["acme/postmortems"]) as github:
        bed = await start_bed(database_url, settings_overrides={
            "github_api_url": github.api_url, "github_token": github.token,
            "postmortem_github_repo": "acme/postmortems"})
        try:
            _, channel = await _open(bed)
            reply = await bed.run_command("export github", channel=channel)
            url = f"{github.url}/acme/postmortems/issues/1"
            assert reply == f"Post-mortem issue opened: {url}"
            posted = [m.text for m in bed.emu.messages(channel)]
            assert f":memo: Post-mortem of INC-1 opened: <{url}|acme/postmortems#1>" in posted
            reply = await bed.run_command("export github", channel=channel)
            assert reply == f"Post-mortem issue updated: {url}"
            issues = github.issues("acme/postmortems")
            assert len(issues) == 1
            assert [label["name"] for label in issues[0]["labels"]] == ["postmortem", "P1"]
            assert github.token not in issues[0]["body"]
        finally:
            await stop_bed(bed)
