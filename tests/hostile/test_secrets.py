"""Secrets never leak (the suite-wide check is tests/support/leaks.py, run by every test).

Here: proof that the scanner does fail, for a leak planted in each place it watches, and a
real flow built to tempt leaks (a pager and a provider whose error bodies echo the
credential they were sent) in which it finds nothing.

What is scanned, and why a user's own text is treated apart, is written at the top of
tests/support/leaks.py: a secret that someone types into Slack is theirs to type, so its
echo in that test's Slack messages, timeline and logs is not counted; exports are scrubbed
whatever the source, so they are checked for it anyway.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import aiohttp
import pytest

from bot.db.engine import create_engine, create_sessionmaker, transaction
from bot.db.migrate import upgrade_async
from bot.emulator.opsgenie import OpsgenieFake
from bot.emulator.pagerduty import PagerDutyFake
from bot.emulator.providers import Fault, RenderFake
from bot.export import pipeline
from bot.incidents import service as incidents
from bot.logging import RedactSecrets
from bot.playbooks.models import Severity
from bot.slack.ids import ActionId
from tests.rollback.conftest import AVA, start_world, stop_world
from tests.support.bed import BOT_TOKEN, GENERAL, REPO, SIGNING_SECRET, start_bed, stop_bed
from tests.support.leaks import LEAKS

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
ROUTING_KEY = "pd-routing-key-firebreak-0123456789"
GENIE_KEY = "5f0a7c1e-2b3d-4e5f-8a9b-hostile0001"


def places(caught) -> set[str]:
    return {finding.where.split(" (")[0].split(" ")[0] for finding in caught}


# --------------------------------------------------------------------------- the scanner fails


@sqlite_only
async def test_the_scanner_catches_a_leak_planted_in_each_place_it_watches(bed, tmp_path):
    log = logging.getLogger("firebreak.planted")
    with LEAKS.expected() as caught:
        # logs: a message, and a traceback carrying the secret in the exception
        log.warning("connecting with %s", BOT_TOKEN)
        try:
            raise RuntimeError(f"refused {SIGNING_SECRET}")
        except RuntimeError:
            log.exception("it failed")
        assert [f.where for f in caught] == ["log record of firebreak.planted (WARNING)",
                                             "log record of firebreak.planted (ERROR)"]

        # a Slack message (any parameter of any Web API call)
        await bed.rt.slack.chat_postMessage(channel=GENERAL, text="fine",
                                            blocks=[{"type": "section", "text": {"type": "mrkdwn",
                                                                                 "text": f"`{BOT_TOKEN}`"}}])
        LEAKS.scan_fakes()
        assert caught[-1].where == "Slack chat.postMessage"

        # a provider request: the body counts, the Authorization header (its place) does not
        async with RenderFake(token="rnd_planted_token_0123456789") as render, aiohttp.ClientSession() as http:
            headers = {"Authorization": f"Bearer {render.token}", "Accept": "application/json"}
            count = len(caught)
            await http.get(f"{render.api_url}/services", headers=headers)
            LEAKS.scan_fakes()
            assert len(caught) == count
            await http.post(f"{render.api_url}/services/x/rollback", headers=headers,
                            json={"deployId": render.token})
            LEAKS.scan_fakes()
        assert caught[-1].where == "RenderFake POST /v1/services/x/rollback", caught[-1]

        # a PagerDuty event: routing_key is where the key belongs, the summary is not
        async with PagerDutyFake(routing_keys={ROUTING_KEY}) as pd, aiohttp.ClientSession() as http:
            event = {"routing_key": ROUTING_KEY, "event_action": "trigger", "dedup_key": "d",
                     "payload": {"summary": "s", "source": "x", "severity": "critical"}}
            await http.post(pd.url, json=event)
            LEAKS.scan_fakes()
            count = len(caught)
            event["payload"]["summary"] = f"key {ROUTING_KEY}"
            await http.post(pd.url, json=event)
            LEAKS.scan_fakes()
        assert len(caught) == count + 1 and caught[-1].where == "PagerDutyFake POST /v2/enqueue"

        # the timeline (any row of a test database)
        url = f"sqlite+aiosqlite:///{tmp_path / 'planted.db'}"
        await upgrade_async(url)
        engine = create_engine(url)
        try:
            async with transaction(create_sessionmaker(engine)) as session:
                opened = await incidents.open_incident(session=session, severity=Severity.P2, title="x",
                                                       reporter_id=AVA, now=bed.clock.now())
                await incidents.add_note(session=session, incident=opened.incident, actor=AVA,
                                         now=bed.clock.now(), text=f"the bot token is {BOT_TOKEN}")
        finally:
            await engine.dispose()
        await LEAKS.scan_database(url)
        assert caught[-1].where == "database table timeline_events"

        # an export: a secret split across two blocks, and a token-shaped string
        async def chunks():
            yield "header " + BOT_TOKEN[:10]
            yield BOT_TOKEN[10:] + " and xoxp-" + "1" * 20

        async for _ in pipeline.buffered(chunks(), size=1):
            pass
        exported = [f for f in caught if f.where == "export"]
        assert any(f.origin.startswith("secret ") and BOT_TOKEN in f.excerpt for f in exported), exported
        assert any(f.origin == "token-shaped text" for f in exported), exported

        # what a user typed: theirs in Slack and on the timeline, still never in an export
        count = len(caught)
        LEAKS.note_user_input(f"text=note+{BOT_TOKEN}")
        LEAKS.check(f"Noted: {BOT_TOKEN}", "Slack chat.postMessage")
        assert len(caught) == count
        LEAKS.check(f"| note | {BOT_TOKEN} |", "export", export=True)
        assert [f.where for f in caught[count:]] == ["export", "export"]  # the secret; token-shaped
    assert places(caught) >= {"log", "Slack", "RenderFake", "PagerDutyFake", "database", "export"}


def test_a_planted_leak_fails_the_session(tmp_path) -> None:
    """The verdict itself: a session whose only test logs a configured secret fails (exit
    status 1 although the test passed), and the report says where."""
    (tmp_path / "conftest.py").write_text(
        "from tests.support.leaks import LeakPlugin\n\n"
        "def pytest_configure(config):\n"
        "    config.pluginmanager.register(LeakPlugin(), 'firebreak-leaks')\n")
    (tmp_path / "test_planted.py").write_text(
        "import logging\nfrom bot.config import Settings\n\n"
        "def test_logs_a_token():\n"
        "    Settings(_env_file=None, slack_bot_token='xoxb-planted-0123456789')\n"
        "    logging.getLogger('firebreak.x').warning('using xoxb-planted-0123456789')\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert "secrets leaked" in result.stdout and "test_planted.py::test_logs_a_token" in result.stdout
    assert "log record of firebreak.x (WARNING): secret Settings.slack_bot_token" in result.stdout


def test_production_log_redaction_covers_tracebacks() -> None:
    """``firebreak serve`` installs RedactSecrets on its handlers: a secret in an exception's
    text (a traceback) is redacted like one in the message."""
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Collect()
    handler.addFilter(RedactSecrets(["hunter2-secret-value"]))
    log = logging.getLogger("firebreak.redaction")
    log.addHandler(handler)
    log.propagate = False
    try:
        with LEAKS.expected():  # the unredacted record also reaches the session's scanner
            log.warning("token hunter2-secret-value")
            try:
                raise ValueError("server said: bad key hunter2-secret-value")
            except ValueError:
                log.exception("call failed")
    finally:
        log.removeHandler(handler)
        log.propagate = True
    assert records and not any("hunter2-secret-value" in r for r in records), records
    assert "[redacted]" in records[-1] and "ValueError" in records[-1]


# --------------------------------------------------------------------------- a tempting real flow


class EchoingPagerDuty(PagerDutyFake):
    """A pager (or a proxy in front of one) whose refusals quote the routing key it was sent."""

    async def _enqueue(self, request):
        event = json.loads(await request.text())
        return self._invalid(f"routing_key {event.get('routing_key')} is not enabled for this service")


class EchoingOpsgenie(OpsgenieFake):
    """An Opsgenie whose refusals quote the Authorization header they got."""

    async def _create(self, request):
        return self._answer(422, 0.0, message=f"{request.headers.get('Authorization')} may not create alerts")


@sqlite_only
async def test_pager_errors_that_echo_their_key_leak_it_nowhere(database_url, monkeypatch):
    """Bugs found: both pagers put the provider's words into the page failure verbatim, so a
    refusal quoting the key reached the Slack reply, the incident channel, the timeline and the
    export (bot/pagers/pagerduty.py, bot/pagers/opsgenie.py now redact the key they sent)."""
    monkeypatch.setenv("PAGERDUTY_ROUTING_KEY_DEFAULT", ROUTING_KEY)
    before = len(LEAKS.findings)
    async with EchoingPagerDuty(routing_keys={ROUTING_KEY}) as pd, EchoingOpsgenie(api_keys={GENIE_KEY}) as og:
        bed = await start_bed(database_url, settings_overrides={
            "pagerduty_events_url": pd.url, "opsgenie_api_url": og.url, "opsgenie_api_key": GENIE_KEY})
        try:
            assert {ROUTING_KEY, GENIE_KEY} <= set(LEAKS.secrets)
            reply = await bed.run_command("open P1 checkout is failing")  # level 1: pagerduty:default
            await bed.run_jobs()
            channel = bed.incident_channel(1).id
            reply = await bed.run_command("page pagerduty:default wake up", channel=channel)
            assert "Could not page" in reply and "[redacted] is not enabled" in reply, reply
            reply = await bed.run_command("page opsgenie:platform wake up", channel=channel)
            assert "Could not page" in reply and "[redacted] may not create alerts" in reply, reply
            await bed.run_command("timeline", channel=channel)
            for fmt in ("md", "json", "html"):
                await bed.run_command(f"export {fmt}", channel=channel)
            assert len(bed.emu.files) == 3
            assert pd.requests_to("/v2/enqueue") and og.requests_to("/v2/alerts")  # asked; answered with the key
            LEAKS.scan_fakes()
            await LEAKS.scan_database(database_url)
        finally:
            await stop_bed(bed)
    assert LEAKS.findings[before:] == []


@sqlite_only
async def test_provider_errors_that_echo_the_token_leak_it_nowhere(database_url, tmp_path):
    w = await start_world(database_url, tmp_path, approvals={"P0": 0, "P1": 0, "P2": 0, "P3": 0})
    before = len(LEAKS.findings)
    try:
        token = w.fakes.token
        echo = f"Authorization: Bearer {token} is not allowed to do this"
        w.fakes.render.faults.add(Fault.REJECT, method="GET", status=403, message=echo)
        reply = await w.command("api")
        assert "Could not prepare the rollback" in reply and token not in reply, reply
        await w.command("api")
        w.fakes.render.faults.add(Fault.REJECT, method="POST", path=r"/rollback$", status=422, message=echo)
        await w.click(AVA, ActionId.ROLLBACK_CONFIRM)
        rollback = await w.drive()
        assert rollback.failure_reason == "rejected" and token not in rollback.outcome
        await w.bed.run_jobs()
        LEAKS.scan_fakes()
        await LEAKS.scan_database(database_url)
    finally:
        await stop_world(w)
    assert LEAKS.findings[before:] == []
