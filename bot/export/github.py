"""The post-mortem as a GitHub issue in ``POSTMORTEM_GITHUB_REPO``, through PyGithub.

One issue per incident: exporting again edits the same issue. It is found by
the number remembered in the database, or else by the hidden marker line
(``<!-- firebreak:postmortem:INC-n -->``) among the repository's ``postmortem``
issues, so a lost database row does not open a second issue.

PyGithub is synchronous: callers run :func:`publish_issue` in a thread
(:func:`publish`). Its default retry repeats POSTs blindly; here only reads are
retried, and a failed create is followed by a search for the marker before
anything is sent again (the POST may have landed).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import requests
from github import Auth, Github, GithubException, GithubRetry, UnknownObjectException
from github.Issue import Issue
from github.Repository import Repository

from bot.config import Settings
from bot.export.markdown import marker

log = logging.getLogger(__name__)

POSTMORTEM_LABEL = "postmortem"
SEVERITY_LABELS = frozenset({"P0", "P1", "P2", "P3"})
SCAN_LIMIT = 1000  # postmortem issues looked through for a marker
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class GitHubExportError(Exception):
    """A failure worded for the person who asked (never containing the token)."""


@dataclass(frozen=True)
class IssueRef:
    repo: str
    number: int
    url: str
    created: bool


def make_client(settings: Settings, *, timeout: int = 15, retries: int = 3,
                polite: bool = True) -> Github:
    """A PyGithub client on ``GITHUB_API_URL`` that retries reads only.

    ``polite`` keeps PyGithub's spacing of requests (0.25 s) and writes (1 s), which
    GitHub asks for to avoid secondary rate limits; tests against a fake turn it off.
    """
    if settings.github_token is None:
        raise GitHubExportError("GITHUB_TOKEN is not set: Firebreak cannot open the issue.")
    retry = GithubRetry(total=retries, backoff_factor=0.5, allowed_methods=READ_METHODS,
                        secondary_rate_wait=5, max_rate_limit_wait=60)
    spacing = {} if polite else {"seconds_between_requests": None, "seconds_between_writes": None}
    return Github(auth=Auth.Token(settings.github_token.get_secret_value()),
                  base_url=str(settings.github_api_url).rstrip("/"), timeout=timeout,
                  retry=retry, per_page=100, **spacing)


def issue_title(key: str, title: str) -> str:
    return f"Post-mortem {key}: {title}"[:250]


def _labels(severity: str, existing: list[str] = ()) -> list[str]:
    kept = [name for name in existing if name not in SEVERITY_LABELS and name != POSTMORTEM_LABEL]
    return [*kept, POSTMORTEM_LABEL, severity]


def find_by_marker(repo: Repository, key: str) -> Issue | None:
    wanted = marker(key)
    for index, issue in enumerate(repo.get_issues(state="all", labels=[POSTMORTEM_LABEL],
                                                  sort="created", direction="desc")):
        if index >= SCAN_LIMIT:
            break
        if issue.pull_request is None and wanted in (issue.body or ""):
            return issue
    return None


def _known(repo: Repository, number: int | None, key: str) -> Issue | None:
    if not number:
        return None
    try:
        issue = repo.get_issue(number)
    except UnknownObjectException:
        return None
    return issue if marker(key) in (issue.body or "") else None


def _transient(exc: Exception) -> bool:
    if isinstance(exc, GithubException):
        return exc.status >= 500 or exc.status == 429
    return isinstance(exc, (requests.ConnectionError, requests.Timeout))


def publish_issue(
    gh: Github, *, repo_name: str, key: str, title: str, body: str, severity: str,
    known_number: int | None = None,
) -> IssueRef:
    """Create or update the incident's issue; blocking (run it in a thread)."""
    try:
        repo = gh.get_repo(repo_name)
        issue = _known(repo, known_number, key) or find_by_marker(repo, key)
        created = False
        if issue is None:
            try:
                issue = repo.create_issue(title=issue_title(key, title), body=body,
                                          labels=_labels(severity))
                return IssueRef(repo_name, issue.number, issue.html_url, True)
            except Exception as exc:
                if not _transient(exc):
                    raise
                log.warning("creating the post-mortem issue of %s failed (%s); checking whether "
                            "it was created anyway", key, type(exc).__name__)
                issue = find_by_marker(repo, key)
                if issue is None:
                    raise
        issue.edit(title=issue_title(key, title), body=body,
                   labels=_labels(severity, [label.name for label in issue.labels]))
        return IssueRef(repo_name, issue.number, issue.html_url, created)
    except GithubException as exc:
        raise GitHubExportError(_explain(exc, repo_name)) from None
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise GitHubExportError(f"GitHub could not be reached ({type(exc).__name__}); "
                                "try the export again.") from None


def _explain(exc: GithubException, repo_name: str) -> str:
    message = ""
    if isinstance(exc.data, dict):
        message = str(exc.data.get("message") or "")
    if exc.status == 401:
        return "GitHub refused GITHUB_TOKEN (401): check the token."
    if exc.status == 404:
        return (f"GitHub repository {repo_name} was not found, or GITHUB_TOKEN cannot see it "
                "(POSTMORTEM_GITHUB_REPO).")
    if exc.status == 403:
        return f"GitHub refused the request (403): {message or 'missing permission or rate limit'}."
    if exc.status == 410:
        return f"Issues are disabled in {repo_name}."
    return f"GitHub answered {exc.status}: {message or 'unexpected error'}."


async def publish(
    settings: Settings, *, key: str, title: str, body: str, severity: str,
    known_number: int | None = None, client: Github | None = None,
) -> IssueRef:
    """:func:`publish_issue` in a worker thread, with the configured repository."""
    repo_name = settings.postmortem_github_repo
    if not repo_name:
        raise GitHubExportError("POSTMORTEM_GITHUB_REPO is not set (owner/name of the repository "
                                "that holds post-mortems).")
    gh = client or make_client(settings)
    try:
        return await asyncio.to_thread(publish_issue, gh, repo_name=repo_name, key=key, title=title,
                                       body=body, severity=severity, known_number=known_number)
    finally:
        if client is None:
            gh.close()
