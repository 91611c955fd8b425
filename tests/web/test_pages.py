"""Web pages: auth (401, bearer, ?token= cookie flow), filters, the incident page, downloads."""

from __future__ import annotations

import json
from datetime import timedelta

import jsonschema
import pytest

from bot.db.engine import transaction
from bot.export import jsonexport
from bot.export.web import SESSION_COOKIE
from bot.incidents import service as incidents
from bot.playbooks.models import Severity
from tests.export.scripted import AVA, BEN, LEAKED, script_incident
from tests.export.test_export import _bulk_events
from tests.support.bed import start_bed, stop_bed
from tests.web.conftest import TOKEN, bearer, url


async def _get(bed, path: str, **kwargs):
    async with bed.http.get(url(bed, path), **kwargs) as response:
        return response.status, await response.text(), response.headers


async def test_pages_need_the_token_but_health_and_metrics_do_not(web_bed):
    for path in ("/incidents", "/incidents/INC-1", "/incidents/INC-1/postmortem.md",
                 "/incidents/INC-1/postmortem.json"):
        status, body, headers = await _get(web_bed, path)
        assert status == 401, path
        assert headers["WWW-Authenticate"] == 'Bearer realm="firebreak"'
        assert "Authorization: Bearer" in body and TOKEN not in body
    assert (await _get(web_bed, "/incidents", headers={"Authorization": "Bearer nope"}))[0] == 401
    assert (await _get(web_bed, "/incidents?token=nope", allow_redirects=False))[0] == 401
    assert (await _get(web_bed, "/incidents", cookies={SESSION_COOKIE: TOKEN}))[0] == 401
    for path in ("/healthz", "/readyz", "/metrics"):
        assert (await _get(web_bed, path))[0] == 200, path
    status, body, headers = await _get(web_bed, "/incidents", headers=bearer())
    assert status == 200 and "<h1>Incidents</h1>" in body
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert headers["Referrer-Policy"] == "no-referrer"


async def test_a_token_in_the_address_sets_a_session_cookie(web_bed, browser_like):
    await script_incident(web_bed.rt.sessions, web_bed.clock)
    async with browser_like.get(url(web_bed, f"/incidents/INC-1?token={TOKEN}&page=1"),
                                allow_redirects=False) as response:
        assert response.status == 302
        assert response.headers["Location"] == "/incidents/INC-1?page=1"  # the token is gone
        cookie = response.cookies[SESSION_COOKIE]
        assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
        assert TOKEN not in cookie.value
    async with browser_like.get(url(web_bed, "/incidents/INC-1?page=1")) as response:
        assert response.status == 200 and 'id="timeline"' in await response.text()
    async with browser_like.get(url(web_bed, "/incidents")) as response:
        assert response.status == 200


async def test_pages_are_disabled_without_a_token(database_url):
    bed = await start_bed(database_url)
    try:
        status, body, _ = await _get(bed, "/incidents", headers=bearer())
        assert status == 404 and "WEB_AUTH_TOKEN is not set" in body
        assert (await _get(bed, "/healthz"))[0] == 200
        assert (await _get(bed, "/metrics"))[0] == 200
    finally:
        await stop_bed(bed)


async def _open(bed, severity: Severity, title: str, service: str | None, *,
                resolve: bool = False, ack: bool = False) -> int:
    async with transaction(bed.rt.sessions) as session:
        opened = await incidents.open_incident(session=session, severity=severity, title=title,
                                               reporter_id=AVA, now=bed.clock.now(), service=service)
        incident = opened.incident
        if ack:
            await incidents.acknowledge(session=session, incident=incident, actor=BEN,
                                        now=bed.clock.now())
        if resolve:
            await incidents.resolve(session=session, incident=incident, actor=BEN,
                                    now=bed.clock.now())
        return incident.number


def _listed(body: str) -> list[str]:
    return [part.split('"')[0] for part in body.split('data-key="')[1:]]


async def test_the_list_filters_by_state_severity_and_service(web_bed):
    await _open(web_bed, Severity.P0, "api down", "api")
    await _open(web_bed, Severity.P1, "web slow", "web", ack=True)
    await _open(web_bed, Severity.P1, "api errors", "api", resolve=True)
    await _open(web_bed, Severity.P3, "typo <b>bold</b>", None)
    cases = {
        "/incidents": ["INC-4", "INC-3", "INC-2", "INC-1"],
        "/incidents?state=resolved": ["INC-3"],
        "/incidents?state=open&state=acknowledged": ["INC-4", "INC-2", "INC-1"],
        "/incidents?severity=P1": ["INC-3", "INC-2"],
        "/incidents?service=api": ["INC-3", "INC-1"],
        "/incidents?severity=p1&service=api&state=resolved": ["INC-3"],
        "/incidents?state=&severity=&service=": ["INC-4", "INC-3", "INC-2", "INC-1"],
        "/incidents?service=nothing": [],
    }
    for path, expected in cases.items():
        status, body, _ = await _get(web_bed, path, headers=bearer())
        assert status == 200 and _listed(body) == expected, path
    status, body, _ = await _get(web_bed, "/incidents", headers=bearer())
    assert "typo &lt;b&gt;bold&lt;/b&gt;" in body  # escaped
    assert '<option value="api">' in body and '<option value="web">' in body
    assert (await _get(web_bed, "/incidents?state=sleeping", headers=bearer()))[0] == 400


async def test_the_incident_page_shows_the_svg_timeline_and_named_events(web_bed):
    run = await script_incident(web_bed.rt.sessions, web_bed.clock)
    status, body, _ = await _get(web_bed, f"/incidents/INC-{run.number}", headers=bearer())
    assert status == 200
    assert '<svg xmlns="http://www.w3.org/2000/svg" id="timeline"' in body
    for phase in ("open", "acknowledged", "mitigated", "resolved"):
        assert f'data-phase="{phase}"' in body
    assert 'class="mark mark-rollback"' in body and 'class="mark mark-page' in body
    assert body.count('<tr class="event ') == len(run.expected)
    assert "@ben is now commander" in body  # names from Slack's users.info
    assert "see #general" in body  # and conversations.info
    assert "2026-03-02 14:04:00 UTC" in body and "2026-03-02 09:04:00 EST" in body
    assert 'href="/incidents/INC-1/postmortem.md"' in body
    assert LEAKED not in body
    assert (await _get(web_bed, "/incidents/INC-99", headers=bearer()))[0] == 404
    assert (await _get(web_bed, "/incidents/yesterday", headers=bearer()))[0] == 404


async def test_the_incident_page_paginates_a_long_timeline(web_bed):
    number = await _open(web_bed, Severity.P2, "noisy", "api")
    async with web_bed.rt.sessions() as session:
        incident = await incidents.get_incident(session=session, number=number)
    await _bulk_events(web_bed.rt.sessions, incident.id, 249)  # 250 events with "opened"
    status, body, _ = await _get(web_bed, f"/incidents/INC-{number}?page=2", headers=bearer())
    assert status == 200 and "page 2 of 3, 100 per page" in body
    seqs = [int(part.split("</td>")[0]) for part in body.split('<td class="num">')[1:]]
    assert seqs == list(range(101, 201))
    assert 'rel="prev" href="?page=1' in body and 'rel="next" href="?page=3' in body
    status, body, _ = await _get(web_bed, f"/incidents/INC-{number}?page=99", headers=bearer())
    assert "page 3 of 3" in body and body.count('<tr class="event ') == 50
    assert 'rel="next"' not in body
    status, body, _ = await _get(web_bed, f"/incidents/INC-{number}?per_page=500",
                                 headers=bearer())
    assert "page 1 of 1" in body and body.count('<tr class="event ') == 250
    status, body, _ = await _get(web_bed, f"/incidents/INC-{number}?per_page=50&page=2",
                                 headers=bearer())
    assert "page 2 of 5, 50 per page" in body and 'href="?page=3&amp;per_page=50' in body


async def test_downloads_stream_markdown_json_and_html(web_bed):
    run = await script_incident(web_bed.rt.sessions, web_bed.clock)
    status, body, headers = await _get(web_bed, "/incidents/INC-1/postmortem.md", headers=bearer())
    assert status == 200 and headers["Content-Type"] == "text/markdown; charset=utf-8"
    assert headers["Content-Disposition"] == 'attachment; filename="INC-1-postmortem.md"'
    assert body.startswith("# INC-1: Checkout is failing — post-mortem")
    assert "| Commander | ben |" in body and LEAKED not in body
    status, body, headers = await _get(web_bed, "/incidents/INC-1/postmortem.json", headers=bearer())
    document = json.loads(body)
    jsonschema.validate(document, jsonexport.schema(), cls=jsonschema.Draft202012Validator)
    assert len(document["timeline"]) == len(run.expected)
    status, body, headers = await _get(web_bed, "/incidents/INC-1/postmortem.html", headers=bearer())
    assert status == 200 and headers["Content-Disposition"].startswith("inline")
    assert (await _get(web_bed, "/incidents/INC-9/postmortem.md", headers=bearer()))[0] == 404
    assert (await _get(web_bed, "/incidents/INC-1/postmortem.txt", headers=bearer()))[0] == 404


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_list_paginates(web_bed):
    for n in range(55):
        web_bed.clock.advance(timedelta(minutes=1))
        await _open(web_bed, Severity.P3, f"minor {n}", None)
    status, body, _ = await _get(web_bed, "/incidents?severity=P3", headers=bearer())
    assert status == 200 and len(_listed(body)) == 50 and "page 1 of 2" in body
    assert 'href="?severity=P3&page=2"' in body
    status, body, _ = await _get(web_bed, "/incidents?severity=P3&page=2", headers=bearer())
    assert status == 200 and _listed(body) == ["INC-5", "INC-4", "INC-3", "INC-2", "INC-1"]
