"""The incident channel's set-up never gives up silently, through the signed HTTP endpoint.

- Every plain name taken (``inc-1-<slug>``, ``-2`` … ``-10``): a name with a random tag,
  which nobody can have taken in advance, still gets the incident its channel.
- Slack refusing for good: the set-up job stops after its bounded tries and tells the
  reporter (DM) and ANNOUNCE_CHANNEL plainly; the incident stays open and paging, and
  typing the same ``/incident open`` again finishes it.
"""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from bot.incidents.models import Incident, IncidentState
from bot.jobs.models import Job, JobState
from tests.support.bed import ANNOUNCE, REPORTER

PROVISION = "slack.provision"
PROVISION_ATTEMPTS = 10  # README, "Reliability": the set-up is tried 10 times over about 9 minutes
CHEN = "U1H2J3K4L"  # primary on call in the sample rotation at the bed's time


async def _incident(bed, number: int = 1) -> Incident:
    async with bed.rt.sessions() as session:
        return (await session.execute(select(Incident).where(Incident.number == number))).scalar_one()


async def test_every_plain_name_taken_still_gets_a_channel(bed):
    bed.emu.add_channel("inc-1-checkout-is-failing")
    for n in range(2, 11):
        bed.emu.add_channel(f"inc-1-checkout-is-failing-{n}")
    reply = await bed.run_command("open P1 checkout is failing")
    assert "INC-1 opened in <#" in reply and ":warning:" not in reply, reply
    incident = await _incident(bed)
    assert re.fullmatch(r"inc-1-checkout-is-failing-[0-9a-f]{4}", incident.channel_name), incident.channel_name
    assert incident.is_provisioned and incident.setup_error is None
    assert len(bed.emu.calls_to("conversations.create")) <= 4  # three plain names, then a tagged one


async def test_a_set_up_that_keeps_failing_is_given_up_loudly_and_the_incident_keeps_paging(bed):
    bed.emu.fail_next("conversations.create", "restricted_action", times=PROVISION_ATTEMPTS)
    reply = await bed.run_command("open P1 checkout is failing")
    assert "INC-1 opened" in reply and "restricted_action" in reply
    assert "tells you and the announcement channel if it still cannot" in reply
    for _ in range(PROVISION_ATTEMPTS + 2):
        bed.clock.advance(timedelta(minutes=5))
        await bed.run_jobs()
    async with bed.rt.sessions() as session:
        job = (await session.execute(select(Job).where(Job.kind == PROVISION))).scalar_one()
    assert job.state == JobState.FAILED and job.attempts == PROVISION_ATTEMPTS

    told = [m.text for m in bed.emu.dms(REPORTER)]
    announced = [m.text for m in bed.emu.messages(ANNOUNCE)]
    for texts in (told, announced):
        notice = next((t for t in texts if "stopped trying" in (t or "")), None)
        assert notice is not None, texts
        assert f"INC-1 (P1) checkout is failing: Firebreak could not finish setting it up in Slack and " \
               f"stopped trying after {PROVISION_ATTEMPTS} tries" in notice
        assert "restricted_action" in notice and "open and paging" in notice
        assert "`/incident open P1 checkout is failing`" in notice
    incident = await _incident(bed)
    assert incident.state == IncidentState.OPEN and incident.channel_id is None
    assert [m for m in bed.emu.dms(CHEN) if (m.text or "").startswith("Page: INC-1")]  # paged all along

    # Typed again, the same command finishes the same incident.
    reply = await bed.run_command("open P1 checkout is failing")
    assert "INC-1 is open in <#" in reply, reply
    incident = await _incident(bed)
    assert incident.is_provisioned and incident.channel_name == "inc-1-checkout-is-failing"
