"""``export github`` against the local GitHub issues fake (PyGithub over real HTTP)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import delete

from bot.db.engine import transaction
from bot.emulator.github_issues import GitHubIssuesFake, parse_recording
from bot.export import pipeline
from bot.export import service as exports
from bot.export.github import GitHubExportError, make_client
from bot.export.markdown import marker
from bot.export.models import PostmortemIssue
from bot.incidents import service as incidents
from bot.playbooks.models import Severity
from tests.export.conftest import make_settings
from tests.export.scripted import BEN, LEAKED, script_incident
from tests.support.specs import spec_path

REPO = "acme/postmortems"


@pytest.fixture
async def github():
    async with GitHubIssuesFake(repos=[REPO]) as fake:
        yield fake


@pytest.fixture
def gh_exporter(exporter, github, database_url):
    exporter.settings = make_settings(database_url, github_api_url=github.api_url,
                                      github_token=github.token, postmortem_github_repo=REPO)
    return exporter


async def publish(exporter, number: int):
    """pipeline.publish_github with a client that skips PyGithub's request spacing."""
    try:
        client = make_client(exporter.settings, polite=False)
    except GitHubExportError:
        client = None
    try:
        return await pipeline.publish_github(exporter, number=number, client=client)
    finally:
        if client is not None:
            client.close()


def _labels(issue) -> list[str]:
    return [label["name"] for label in issue["labels"]]


async def test_export_creates_then_updates_the_same_issue(gh_exporter, github, sessions, clock):
    run = await script_incident(sessions, clock)
    first = await publish(gh_exporter, run.number)
    assert first.created and first.number == 1 and first.repo == REPO
    issue = github.issue(REPO, 1)
    assert issue["title"] == "Post-mortem INC-1: Checkout is failing"
    assert _labels(issue) == ["postmortem", "P1"]
    body = issue["body"]
    assert body.startswith(marker("INC-1"))
    assert "| Time to acknowledge | 4m |" in body
    assert "- [ ] Add a canary for checkout — owner: ava" in body  # follow-ups as a task list
    assert "- [ ] Revert or fix the change in git" in body
    assert LEAKED not in body and gh_exporter.settings.github_token.get_secret_value() not in body

    # someone adds a label on GitHub; the incident is raised to P0 and exported again
    issue["labels"].append({"name": "team-payments", "id": 1, "color": "ededed"})
    async with transaction(sessions) as session:
        incident = await incidents.get_incident(session=session, number=run.number)
        await incidents.reopen(session=session, incident=incident, actor=BEN, now=clock.now())
        await incidents.change_severity(session=session, incident=incident,
                                        severity=Severity.P0, actor=BEN, now=clock.now())
    second = await publish(gh_exporter, run.number)
    assert not second.created and second.number == 1 and second.url == first.url
    assert len(github.issues(REPO)) == 1
    assert _labels(github.issue(REPO, 1)) == ["team-payments", "postmortem", "P0"]
    assert "| Severity | P0 (Critical) |" in github.issue(REPO, 1)["body"]
    assert [e.verb for e in github.requests(path=r"/issues")] == [
        "GET", "POST", "GET", "PATCH"]  # look for a marker, create; get the known one, edit
    async with sessions() as session:
        incident = await incidents.get_incident(session=session, number=run.number)
        stored = await exports.issue_for(session=session, incident=incident)
    assert (stored.repo, stored.number, stored.url) == (REPO, 1, first.url)


async def test_a_lost_database_row_finds_the_issue_by_its_marker(gh_exporter, github, sessions,
                                                                 clock):
    run = await script_incident(sessions, clock)
    await publish(gh_exporter, run.number)
    async with transaction(sessions) as session:
        await session.execute(delete(PostmortemIssue))
    again = await publish(gh_exporter, run.number)
    assert not again.created and again.number == 1
    assert len(github.issues(REPO)) == 1


async def test_a_lost_create_response_does_not_open_a_second_issue(gh_exporter, github, sessions,
                                                                   clock):
    run = await script_incident(sessions, clock)
    github.fail_next("POST", r"/issues$", lost_response=True)
    ref = await publish(gh_exporter, run.number)
    assert ref.number == 1 and len(github.issues(REPO)) == 1
    assert len(github.requests("POST")) == 1  # PyGithub's own retry of POST is off


async def test_a_failed_create_is_not_repeated_blindly(gh_exporter, github, sessions, clock):
    run = await script_incident(sessions, clock)
    github.fail_next("POST", r"/issues$", status=502)
    with pytest.raises(GitHubExportError, match="GitHub answered 502"):
        await publish(gh_exporter, run.number)
    assert len(github.requests("POST")) == 1 and github.issues(REPO) == []
    ref = await publish(gh_exporter, run.number)
    assert ref.created and len(github.issues(REPO)) == 1


async def test_errors_are_explained_without_the_token(gh_exporter, github, sessions, clock,
                                                      database_url):
    run = await script_incident(sessions, clock)
    gh_exporter.settings = make_settings(database_url, github_api_url=github.api_url,
                                         github_token="ghp_wrongTokenWrongToken000000000000",
                                         postmortem_github_repo=REPO)
    with pytest.raises(GitHubExportError) as refused:
        await publish(gh_exporter, run.number)
    assert "refused GITHUB_TOKEN (401)" in str(refused.value) and "ghp_" not in str(refused.value)
    gh_exporter.settings = make_settings(database_url, github_api_url=github.api_url,
                                         github_token=github.token,
                                         postmortem_github_repo="acme/nope")
    with pytest.raises(GitHubExportError, match="acme/nope was not found"):
        await publish(gh_exporter, run.number)
    gh_exporter.settings = make_settings(database_url, github_api_url=github.api_url,
                                         github_token=github.token)
    with pytest.raises(GitHubExportError, match="POSTMORTEM_GITHUB_REPO is not set"):
        await publish(gh_exporter, run.number)


async def test_a_huge_timeline_still_fits_in_one_issue(gh_exporter, github, sessions, clock):
    from tests.export.test_export import _bulk_events

    run = await script_incident(sessions, clock)
    async with sessions() as session:
        incident = await incidents.get_incident(session=session, number=run.number)
    await _bulk_events(sessions, incident.id, 3000)
    await publish(gh_exporter, run.number)
    body = github.issue(REPO, 1)["body"]
    assert len(body) <= 65_000
    assert "more events: run `firebreak export INC-1 --format md` for the full timeline" in body
    assert "## Lessons learned" in body


def test_the_fake_answers_in_the_recorded_shapes():
    """The repository the fake serves has every field GitHub's recorded answer has."""
    recorded = parse_recording(spec_path("github", "Deployment.setUp.txt").read_text())
    real_repo = next(e for e in recorded if e.verb == "GET" and e.url.count("/") == 3).json()
    fake = GitHubIssuesFake(repos=["acme/postmortems"])
    fake._url = "http://127.0.0.1:1"
    served = fake._repo_json(fake._repos["acme/postmortems"])
    wanted = {"id", "node_id", "name", "full_name", "private", "owner", "html_url", "description",
              "fork", "url", "issues_url", "labels_url", "created_at", "updated_at", "pushed_at",
              "default_branch", "has_issues", "open_issues_count", "archived", "disabled",
              "permissions"}
    assert wanted <= set(real_repo) and wanted <= set(served)
    assert set(real_repo["owner"]) >= {"login", "id", "type", "url", "html_url"} <= set(served["owner"])


async def test_the_fake_records_exchanges_in_pygithub_format(github):
    from github import Auth, Github

    def use_pygithub() -> None:  # blocking: in a thread, while the fake serves on this loop
        client = Github(auth=Auth.Token(github.token), base_url=github.api_url, retry=None,
                        seconds_between_requests=None, seconds_between_writes=None)
        repo = client.get_repo(REPO)
        issue = repo.create_issue(title="hello", body="world", labels=["postmortem"])
        issue.edit(state="closed")
        client.close()

    await asyncio.to_thread(use_pygithub)
    exchanges = parse_recording(github.recording())
    assert [(e.verb, e.url, e.status) for e in exchanges] == [
        ("GET", f"/repos/{REPO}", 200), ("POST", f"/repos/{REPO}/issues", 201),
        ("PATCH", f"/repos/{REPO}/issues/1", 200)]
    assert "private_token_removed" in exchanges[0].request_headers
    assert github.token not in github.recording()
    assert exchanges[1].json()["labels"][0]["name"] == "postmortem"
    assert github.issue(REPO, 1)["state"] == "closed"
