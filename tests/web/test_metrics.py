"""``/metrics``: derived from the database, so a restart keeps every figure."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from bot.db.engine import transaction
from bot.incidents import service as incidents
from bot.metrics.install import COLLECTOR
from bot.playbooks.models import Severity
from tests.export.scripted import AVA, script_incident
from tests.support.bed import start_bed, stop_bed
from tests.web.conftest import url


async def _samples(bed) -> dict[tuple[str, tuple], float]:
    bed.rt.extras[COLLECTOR].min_interval = 0  # read the database on every scrape
    async with bed.http.get(url(bed, "/metrics")) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("firebreak_"):
                found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _value(samples, name: str, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


async def test_metrics_count_incidents_durations_pages_and_rollbacks(database_url):
    bed = await start_bed(database_url)
    try:
        await script_incident(bed.rt.sessions, bed.clock)  # P1, acked in 4m, resolved in 30m
        async with transaction(bed.rt.sessions) as session:
            opened = await incidents.open_incident(session=session, severity=Severity.P0,
                                                   title="down", reporter_id=AVA,
                                                   now=bed.clock.now())
            # one Heroku rollback writing two steps in its final state, one failed Vercel one
            for rollback_id, provider, state in ((7, "heroku", "succeeded"),
                                                 (7, "heroku", "succeeded"),
                                                 (8, "vercel", "rolling_back"),
                                                 (8, "vercel", "failed")):
                await incidents.record_event(
                    session=session, incident=opened.incident, kind="rollback",
                    now=bed.clock.now(), data={"rollback_id": rollback_id, "provider": provider,
                                               "state": state, "service": "api"})
        samples = await _samples(bed)
    finally:
        await stop_bed(bed)
    assert _value(samples, "firebreak_incidents", severity="P1", state="resolved") == 1
    assert _value(samples, "firebreak_incidents", severity="P0", state="open") == 1
    assert _value(samples, "firebreak_incidents", severity="P2", state="open") == 0
    ack = "firebreak_incident_time_to_acknowledge_seconds"
    assert _value(samples, ack + "_count", severity="P1") == 1
    assert _value(samples, ack + "_sum", severity="P1") == 240
    assert _value(samples, ack + "_bucket", severity="P1", le="60.0") == 0
    assert _value(samples, ack + "_bucket", severity="P1", le="300.0") == 1
    assert _value(samples, ack + "_count", severity="P0") == 0
    resolve = "firebreak_incident_time_to_resolve_seconds"
    assert _value(samples, resolve + "_sum", severity="P1") == 1800
    assert _value(samples, resolve + "_bucket", severity="P1", le="900.0") == 0
    assert _value(samples, resolve + "_bucket", severity="P1", le="1800.0") == 1
    assert _value(samples, "firebreak_pages_total", pager="user", outcome="delivered") == 1
    assert _value(samples, "firebreak_pages_total", pager="pagerduty", outcome="failed") == 1
    # the in-progress step of the rollback is not an outcome; its completion is, once
    assert _value(samples, "firebreak_rollbacks_total", provider="render", outcome="succeeded") == 1
    assert _value(samples, "firebreak_rollbacks_total", provider="heroku", outcome="succeeded") == 1
    assert _value(samples, "firebreak_rollbacks_total", provider="vercel", outcome="failed") == 1
    assert len([k for k in samples if k[0] == "firebreak_rollbacks_total"]) == 3
    assert _value(samples, "firebreak_metrics_database_up") == 1

    again = await start_bed(database_url)  # a restart (or another replica): same figures
    try:
        after = await _samples(again)
    finally:
        await stop_bed(again)
    keep = [k for k in samples if not k[0].startswith("firebreak_metrics_")]
    assert {k: after[k] for k in keep} == {k: samples[k] for k in keep}
