"""A local fake of GitHub's issues API, enough for PyGithub to open and edit issues.

Answers in the shapes of GitHub's REST API as PyGithub's recorded exchanges
show them (``tests/ReplayData`` in PyGithub; samples vendored in
``tests/specs/github/``): repositories, issues with labels, listing with filters and
``Link`` pagination, 401/404/422 errors. Every exchange is recorded and can be
written out in PyGithub's recording format (:meth:`GitHubIssuesFake.recording`);
:func:`parse_recording` reads that format back.

    async with GitHubIssuesFake(repos=["acme/postmortems"]) as gh:
        settings = load_settings(github_api_url=gh.api_url, github_token=gh.token,
                                 postmortem_github_repo="acme/postmortems")
        gh.fail_next("POST", r"/issues$", lost_response=True)  # created, answer lost
        ...
        assert gh.issues("acme/postmortems")[0]["labels"][0]["name"] == "postmortem"

A fuller GitHub fake (deployments, workflows) can serve these routes too, by
composition: ``GitHubIssuesFake.add_routes(its_app)``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self
from urllib.parse import urlencode

from aiohttp import web

BODY_LIMIT = 65_536
LABEL_COLOURS = {"postmortem": "5319e7", "P0": "b60205", "P1": "d93f0b", "P2": "fbca04",
                 "P3": "c5def5"}
DOCS = "https://docs.github.com/rest"


@dataclass
class Exchange:
    """One request and its answer, as PyGithub records them."""

    protocol: str
    verb: str
    host: str
    port: str
    url: str
    request_headers: str
    request_body: str
    status: int
    response_headers: str
    response_body: str

    def lines(self) -> list[str]:
        return [self.protocol, self.verb, self.host, self.port, self.url, self.request_headers,
                self.request_body, str(self.status), self.response_headers, self.response_body]

    def json(self) -> Any:
        return json.loads(self.response_body) if self.response_body.strip() else None


def parse_recording(text: str) -> list[Exchange]:
    """Read a PyGithub recording (``tests/ReplayData/*.txt``): ten lines per exchange."""
    lines = text.splitlines()
    exchanges = []
    index = 0
    while index < len(lines):
        if not lines[index].strip():
            index += 1
            continue
        chunk = lines[index:index + 10]
        if len(chunk) < 10:
            raise ValueError(f"truncated exchange at line {index + 1}")
        exchanges.append(Exchange(*chunk[:7], int(chunk[7]), chunk[8], chunk[9]))
        index += 10
    return exchanges


@dataclass
class _Fault:
    method: str
    path: re.Pattern[str]
    status: int
    lost_response: bool


@dataclass
class _Repo:
    id: int
    owner: str
    name: str
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)
    has_issues: bool = True

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class GitHubIssuesFake:
    def __init__(self, *, repos: Iterable[str] = ("acme/postmortems",),
                 token: str = "ghp_fakeFirebreakToken0000000000000000",
                 login: str = "firebreak-bot") -> None:
        self.token = token
        self.login = login
        self._ids = itertools.count(1001)
        self._repos: dict[str, _Repo] = {}
        for full_name in repos:
            self.add_repo(full_name)
        self.exchanges: list[Exchange] = []
        self._faults: list[_Fault] = []
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self.app = web.Application(middlewares=[self._middleware])
        self.add_routes(self.app)

    # -- set-up and inspection -------------------------------------------------------------

    def add_repo(self, full_name: str, *, has_issues: bool = True) -> None:
        owner, name = full_name.split("/", 1)
        self._repos[full_name.lower()] = _Repo(next(self._ids), owner, name, has_issues=has_issues)

    def issues(self, full_name: str) -> list[dict[str, Any]]:
        repo = self._repos[full_name.lower()]
        return [repo.issues[n] for n in sorted(repo.issues)]

    def issue(self, full_name: str, number: int) -> dict[str, Any]:
        return self._repos[full_name.lower()].issues[number]

    def requests(self, verb: str | None = None, path: str | None = None) -> list[Exchange]:
        return [e for e in self.exchanges
                if (verb is None or e.verb == verb) and (path is None or re.search(path, e.url))]

    def fail_next(self, method: str, path: str = ".*", *, status: int = 502,
                  lost_response: bool = False) -> None:
        """The next matching request fails with ``status``; with ``lost_response`` it is
        carried out first (the client never hears that it worked)."""
        self._faults.append(_Fault(method.upper(), re.compile(path), status, lost_response))

    def recording(self) -> str:
        """Every exchange so far in PyGithub's recording format."""
        return "\n\n".join("\n".join(e.lines()) for e in self.exchanges) + "\n"

    # -- serving ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the fake is not serving: call start()")
        return self._url

    @property
    def api_url(self) -> str:
        return self.url

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> GitHubIssuesFake:
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        bound = runner.addresses[0]
        self._url = f"http://{host}:{bound[1]}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def add_routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/user", self._user)
        r.add_get("/repos/{owner}/{repo}", self._get_repo)
        r.add_get("/repos/{owner}/{repo}/issues", self._list_issues)
        r.add_post("/repos/{owner}/{repo}/issues", self._create_issue)
        r.add_get("/repos/{owner}/{repo}/issues/{number:\\d+}", self._get_issue)
        r.add_patch("/repos/{owner}/{repo}/issues/{number:\\d+}", self._edit_issue)
        r.add_get("/repos/{owner}/{repo}/labels", self._list_labels)
        r.add_get("/{owner}/{repo}/issues/{number:\\d+}", self._issue_page)

    # -- plumbing ---------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler) -> web.StreamResponse:
        body = await request.text() if request.can_read_body else None
        fault = next((f for f in self._faults if f.method == request.method
                      and f.path.search(request.path)), None)
        if fault is not None:
            self._faults.remove(fault)
        if request.path.startswith(("/repos", "/user")) and not self._authorized(request):
            response: web.StreamResponse = _error(401, "Bad credentials")
        elif fault is not None and not fault.lost_response:
            response = _error(fault.status, "Server Error")
        else:
            response = await handler(request)
        self._record(request, body, response)
        if fault is not None and fault.lost_response:
            _reset(request)  # carried out, but the client never sees the answer
        return response

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        return scheme.lower() in ("token", "bearer") and value.strip() == self.token

    def _record(self, request: web.Request, body: str | None, response: web.StreamResponse) -> None:
        host, _, port = (request.host or "").partition(":")
        headers = {k: ("token private_token_removed" if k == "Authorization" else v)
                   for k, v in request.headers.items()
                   if k in ("Authorization", "User-Agent", "Content-Type", "Accept")}
        text = response.text if isinstance(response, web.Response) else ""
        self.exchanges.append(Exchange(
            "http", request.method, host, port or "None", request.path_qs, repr(headers),
            body if body else "None", response.status,
            repr([("Content-Type", response.headers.get("Content-Type", ""))]), text or ""))

    def _repo(self, request: web.Request) -> _Repo | None:
        return self._repos.get(f"{request.match_info['owner']}/{request.match_info['repo']}".lower())

    def _user_json(self) -> dict[str, Any]:
        return {"login": self.login, "id": 4242, "node_id": "MDQ6VXNlcjQyNDI=", "type": "Bot",
                "site_admin": False, "url": f"{self.url}/users/{self.login}",
                "html_url": f"{self.url}/{self.login}",
                "avatar_url": "https://avatars.example.invalid/u/4242"}

    def _repo_json(self, repo: _Repo) -> dict[str, Any]:
        base = f"{self.url}/repos/{repo.full_name}"
        owner = {**self._user_json(), "login": repo.owner, "type": "Organization",
                 "url": f"{self.url}/users/{repo.owner}", "html_url": f"{self.url}/{repo.owner}"}
        return {
            "id": repo.id, "node_id": f"R_{repo.id}", "name": repo.name,
            "full_name": repo.full_name, "private": True, "owner": owner,
            "html_url": f"{self.url}/{repo.full_name}", "description": "Post-mortems",
            "fork": False, "url": base, "issues_url": base + "/issues{/number}",
            "labels_url": base + "/labels{/name}", "created_at": "2026-01-01T00:00:00Z",
            "updated_at": _now(), "pushed_at": _now(), "default_branch": "main",
            "has_issues": repo.has_issues, "open_issues_count": sum(
                1 for i in repo.issues.values() if i["state"] == "open"),
            "archived": False, "disabled": False, "visibility": "private",
            "permissions": {"admin": False, "push": True, "pull": True},
        }

    def _label(self, repo: _Repo, name: str) -> dict[str, Any]:
        if name not in repo.labels:  # GitHub creates a missing label on first use
            label_id = next(self._ids)
            repo.labels[name] = {
                "id": label_id, "node_id": f"LA_{label_id}", "name": name, "default": False,
                "url": f"{self.url}/repos/{repo.full_name}/labels/{name}",
                "color": LABEL_COLOURS.get(name, "ededed"), "description": None,
            }
        return repo.labels[name]

    def _issue_urls(self, repo: _Repo, number: int) -> dict[str, str]:
        base = f"{self.url}/repos/{repo.full_name}/issues/{number}"
        return {"url": base, "repository_url": f"{self.url}/repos/{repo.full_name}",
                "labels_url": base + "/labels{/name}", "comments_url": base + "/comments",
                "events_url": base + "/events", "timeline_url": base + "/timeline",
                "html_url": f"{self.url}/{repo.full_name}/issues/{number}"}

    @staticmethod
    async def _json_body(request: web.Request) -> dict[str, Any] | web.Response:
        try:
            data = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "Problems parsing JSON")
        if not isinstance(data, dict):
            return _error(400, "Problems parsing JSON")
        return data

    def _validate(self, data: dict[str, Any], *, creating: bool) -> web.Response | None:
        title = data.get("title")
        if creating and not (isinstance(title, str) and title.strip()):
            return _error(422, "Validation Failed",
                          errors=[{"resource": "Issue", "code": "missing_field", "field": "title"}])
        if title is not None and (not isinstance(title, str) or len(title) > 256):
            return _error(422, "Validation Failed",
                          errors=[{"resource": "Issue", "code": "invalid", "field": "title"}])
        body = data.get("body")
        if body is not None and (not isinstance(body, str) or len(body) > BODY_LIMIT):
            return _error(422, "Validation Failed", errors=[{
                "resource": "Issue", "code": "custom", "field": "body",
                "message": f"body is too long (maximum is {BODY_LIMIT} characters)"}])
        labels = data.get("labels")
        if labels is not None and not (isinstance(labels, list)
                                       and all(isinstance(x, str) for x in labels)):
            return _error(422, "Validation Failed",
                          errors=[{"resource": "Issue", "code": "invalid", "field": "labels"}])
        if data.get("state") not in (None, "open", "closed"):
            return _error(422, "Validation Failed",
                          errors=[{"resource": "Issue", "code": "invalid", "field": "state"}])
        return None

    # -- handlers ---------------------------------------------------------------------------

    async def _user(self, request: web.Request) -> web.Response:
        return web.json_response(self._user_json())

    async def _get_repo(self, request: web.Request) -> web.Response:
        repo = self._repo(request)
        if repo is None:
            return _error(404, "Not Found")
        return web.json_response(self._repo_json(repo))

    async def _list_labels(self, request: web.Request) -> web.Response:
        repo = self._repo(request)
        if repo is None:
            return _error(404, "Not Found")
        return web.json_response(list(repo.labels.values()))

    async def _list_issues(self, request: web.Request) -> web.Response:
        repo = self._repo(request)
        if repo is None:
            return _error(404, "Not Found")
        state = request.query.get("state", "open")
        wanted = [x for x in request.query.get("labels", "").split(",") if x]
        found = [i for i in repo.issues.values()
                 if (state == "all" or i["state"] == state)
                 and all(any(label["name"] == w for label in i["labels"]) for w in wanted)]
        newest_first = request.query.get("direction", "desc") == "desc"
        found.sort(key=lambda i: i["number"], reverse=newest_first)
        per_page = max(1, min(100, int(request.query.get("per_page", "30"))))
        page = max(1, int(request.query.get("page", "1")))
        chunk = found[(page - 1) * per_page: page * per_page]
        headers = {}
        last = max(1, -(-len(found) // per_page))
        if page < last:
            params = {k: v for k, v in request.query.items() if k != "page"}
            base = f"{self.url}{request.path}?"
            headers["Link"] = (f'<{base}{urlencode({**params, "page": page + 1})}>; rel="next", '
                               f'<{base}{urlencode({**params, "page": last})}>; rel="last"')
        return web.json_response(chunk, headers=headers)

    async def _create_issue(self, request: web.Request) -> web.Response:
        repo = self._repo(request)
        if repo is None:
            return _error(404, "Not Found")
        if not repo.has_issues:
            return _error(410, "Issues are disabled for this repo")
        data = await self._json_body(request)
        if isinstance(data, web.Response):
            return data
        invalid = self._validate(data, creating=True)
        if invalid is not None:
            return invalid
        number = max([0, *repo.issues]) + 1
        issue_id = next(self._ids)
        now = _now()
        issue = {
            **self._issue_urls(repo, number), "id": issue_id, "node_id": f"I_{issue_id}",
            "number": number, "title": data["title"], "user": self._user_json(),
            "labels": [self._label(repo, name) for name in dict.fromkeys(data.get("labels") or [])],
            "state": "open", "locked": False, "assignee": None, "assignees": [],
            "milestone": None, "comments": 0, "created_at": now, "updated_at": now,
            "closed_at": None, "author_association": "MEMBER", "active_lock_reason": None,
            "body": data.get("body"), "closed_by": None, "state_reason": None,
            "reactions": {"total_count": 0},
        }
        repo.issues[number] = issue
        return web.json_response(issue, status=201,
                                 headers={"Location": issue["url"]})

    async def _get_issue(self, request: web.Request) -> web.Response:
        repo = self._repo(request)
        issue = repo.issues.get(int(request.match_info["number"])) if repo else None
        if issue is None:
            return _error(404, "Not Found")
        return web.json_response(issue)

    async def _edit_issue(self, request: web.Request) -> web.Response:
        repo = self._repo(request)
        issue = repo.issues.get(int(request.match_info["number"])) if repo else None
        if issue is None:
            return _error(404, "Not Found")
        data = await self._json_body(request)
        if isinstance(data, web.Response):
            return data
        invalid = self._validate(data, creating=False)
        if invalid is not None:
            return invalid
        for name in ("title", "body"):
            if name in data:
                issue[name] = data[name]
        if "labels" in data:
            issue["labels"] = [self._label(repo, n) for n in dict.fromkeys(data["labels"])]
        if data.get("state") in ("open", "closed") and data["state"] != issue["state"]:
            issue["state"] = data["state"]
            issue["closed_at"] = _now() if data["state"] == "closed" else None
        issue["updated_at"] = _now()
        return web.json_response(issue)

    async def _issue_page(self, request: web.Request) -> web.Response:
        repo = self._repo(request)
        issue = repo.issues.get(int(request.match_info["number"])) if repo else None
        if issue is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(text=f"# {issue['title']}\n\n{issue['body'] or ''}",
                            content_type="text/markdown")


def _error(status: int, message: str, *, errors: list[dict[str, Any]] | None = None) -> web.Response:
    body: dict[str, Any] = {"message": message, "documentation_url": DOCS}
    if errors:
        body["errors"] = errors
    return web.json_response(body, status=status)


def _reset(request: web.Request) -> None:
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):  # SO_LINGER 0: the peer sees a reset, not an orderly close
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
