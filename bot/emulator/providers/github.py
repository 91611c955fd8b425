"""A local fake of the GitHub REST API, as much as rollbacks through PyGithub use
(``GITHUB_API_URL`` = ``fake.api_url``: PyGithub's ``base_url``).

It answers in the shapes of PyGithub's recordings of the real API
(``tests/specs/github/*.txt``; a test compares them key by key):

- ``GET  /repos/{owner}/{repo}`` and ``/user``;
- ``GET  /repos/{o}/{r}/actions/workflows/{id-or-file}``;
- ``POST /repos/{o}/{r}/actions/workflows/{id-or-file}/dispatches`` ``{ref, inputs,
  return_run_details}`` → 204, or 200 ``{workflow_run_id, run_url, html_url}``;
  422 for an unknown ref, an undeclared input or a missing required one;
- ``GET  /repos/{o}/{r}/actions/runs/{id}`` (each read moves a dispatched run
  ``queued`` → ``in_progress`` → ``completed``/``success``; a successful run
  "deploys" its ``sha`` input, which the health endpoint reflects);
- ``GET  /repos/{o}/{r}/actions/workflows/{wf}/runs`` and ``/actions/runs``
  (``event``, ``branch``, ``status``, ``created`` filters, paginated);
- ``GET|POST /repos/{o}/{r}/deployments`` (``environment``/``sha``/``ref``/``task``
  filters), ``GET /repos/{o}/{r}/deployments/{id}``,
  ``GET|POST /repos/{o}/{r}/deployments/{id}/statuses`` (``auto_inactive``).

Errors are ``{"message", "documentation_url", "status"}`` (401 "Bad credentials",
404 "Not Found"). Lists are paginated with ``per_page``/``page`` and ``Link``.
``/health/acme/shop`` (or ``/health/shop``) answers 500 while a bad commit is deployed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from bot.clock import utc
from bot.emulator.providers._server import FakeProviderServer, SeededService

DOCS = "https://docs.github.com/rest"
DEPLOYMENT_STATES = {"error", "failure", "inactive", "in_progress", "queued", "pending", "success"}
RUN_STEPS: tuple[tuple[str, str | None], ...] = (
    ("queued", None),
    ("in_progress", None),
    ("in_progress", None),
    ("completed", "success"),
)
ROLLBACK_INPUTS = {"sha": True, "deploy_id": False, "reason": False, "firebreak_key": False}
_SHA = re.compile(r"^[0-9a-f]{40}$")


def _ts(when: datetime) -> str:
    return utc(when).strftime("%Y-%m-%dT%H:%M:%SZ")


def _node_id(kind: str, number: int) -> str:
    return f"{kind}_kwDOFake{number:08d}"


@dataclass(slots=True)
class FakeUser:
    login: str
    id: int
    type: str = "User"

    def to_json(self, api: str) -> dict[str, Any]:
        return {
            "login": self.login,
            "id": self.id,
            "node_id": _node_id("U", self.id),
            "avatar_url": f"https://avatars.githubusercontent.com/u/{self.id}?v=4",
            "gravatar_id": "",
            "url": f"{api}/users/{self.login}",
            "html_url": f"https://github.com/{self.login}",
            "followers_url": f"{api}/users/{self.login}/followers",
            "following_url": f"{api}/users/{self.login}/following{{/other_user}}",
            "gists_url": f"{api}/users/{self.login}/gists{{/gist_id}}",
            "starred_url": f"{api}/users/{self.login}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{api}/users/{self.login}/subscriptions",
            "organizations_url": f"{api}/users/{self.login}/orgs",
            "repos_url": f"{api}/users/{self.login}/repos",
            "events_url": f"{api}/users/{self.login}/events{{/privacy}}",
            "received_events_url": f"{api}/users/{self.login}/received_events",
            "type": self.type,
            "site_admin": False,
        }


@dataclass(slots=True)
class FakeStatus:
    id: int
    state: str
    description: str
    environment: str
    created_at: datetime
    creator: FakeUser
    target_url: str = ""
    environment_url: str = ""
    log_url: str = ""


@dataclass(slots=True)
class FakeDeployment:
    id: int
    sha: str
    ref: str
    environment: str
    description: str
    created_at: datetime
    creator: FakeUser
    payload: dict[str, Any] = field(default_factory=dict)
    task: str = "deploy"
    transient_environment: bool = False
    production_environment: bool = True
    statuses: list[FakeStatus] = field(default_factory=list)  # newest first

    @property
    def state(self) -> str | None:
        return self.statuses[0].state if self.statuses else None


@dataclass(slots=True)
class FakeWorkflow:
    id: int
    name: str
    path: str
    inputs: dict[str, bool]  # name → required
    run_name: str = "Rollback to {sha} [{firebreak_key}]"  # like `run-name:` with ${{ inputs.* }}
    dispatchable: bool = True
    created_at: datetime = field(default_factory=lambda: datetime(2025, 1, 6, 9, 0, tzinfo=UTC))

    @property
    def file_name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(slots=True)
class FakeRun:
    id: int
    workflow: FakeWorkflow
    run_number: int
    head_branch: str
    head_sha: str
    event: str
    inputs: dict[str, str]
    created_at: datetime
    actor: FakeUser
    status: str = "queued"
    conclusion: str | None = None
    updated_at: datetime | None = None
    pending_steps: list[tuple[str, str | None]] = field(default_factory=list)

    @property
    def display_title(self) -> str:
        try:
            return self.workflow.run_name.format_map(_Blank(self.inputs))
        except (ValueError, IndexError):
            return self.workflow.name


class _Blank(dict):  # str.format_map with missing inputs rendered empty, as GitHub does
    def __missing__(self, key: str) -> str:
        return ""


@dataclass(slots=True)
class FakeRepo:
    id: int
    owner: FakeUser
    name: str
    branches: dict[str, str]  # name → head sha
    default_branch: str = "main"
    workflows: list[FakeWorkflow] = field(default_factory=list)
    runs: list[FakeRun] = field(default_factory=list)  # newest first
    deployments: list[FakeDeployment] = field(default_factory=list)  # newest first
    live_sha: str | None = None
    bad_shas: set[str] = field(default_factory=set)
    alias: str | None = None

    @property
    def full_name(self) -> str:
        return f"{self.owner.login}/{self.name}"

    def workflow(self, key: str) -> FakeWorkflow | None:
        return next((w for w in self.workflows if str(w.id) == key or w.file_name == key), None)


class GitHubFake(FakeProviderServer):
    provider = "github"
    validation_status = 422

    def __init__(self, *, seed: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.repos: dict[str, FakeRepo] = {}
        self.seeded: dict[str, SeededService] = {}
        self.bot_user = FakeUser("firebreak-bot", 90000001, type="Bot")
        self.run_steps: tuple[tuple[str, str | None], ...] = RUN_STEPS
        self.dispatch_calls = 0
        self._next_conclusion: str | None = None
        self._ids = 5_000_000
        r = self.app.router
        base = "/repos/{owner}/{repo}"
        r.add_get("/user", self._user)
        r.add_get(base, self._repo)
        r.add_get(base + "/actions/workflows/{workflow}", self._workflow)
        r.add_post(base + "/actions/workflows/{workflow}/dispatches", self._dispatch)
        r.add_get(base + "/actions/workflows/{workflow}/runs", self._list_runs)
        r.add_get(base + "/actions/runs", self._list_runs)
        r.add_get(base + "/actions/runs/{run_id}", self._run)
        r.add_get(base + "/deployments", self._list_deployments)
        r.add_post(base + "/deployments", self._create_deployment)
        r.add_get(base + "/deployments/{deployment_id}", self._deployment)
        r.add_get(base + "/deployments/{deployment_id}/statuses", self._list_statuses)
        r.add_post(base + "/deployments/{deployment_id}/statuses", self._create_status)
        if seed:
            self.seed_repo("acme/shop", alias="shop")

    # -- seeding and scripting

    def seed_repo(self, full_name: str, *, alias: str | None = None, environment: str = "production") -> SeededService:
        """Four production deployments (live & bad, failed, good, good) and the rollback workflow."""
        owner, name = full_name.split("/", 1)
        now = self.clock.now()
        shas = [
            "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0",
            "b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1",
            "c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2",
            "d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3",
        ]
        repo = FakeRepo(self._next_id(), FakeUser(owner, 4_000_001, type="Organization"), name, {"main": shas[3]}, alias=alias)
        repo.workflows.append(FakeWorkflow(self._next_id(), "Rollback", ".github/workflows/rollback.yml", dict(ROLLBACK_INPUTS)))
        repo.workflows.append(FakeWorkflow(self._next_id(), "CI", ".github/workflows/ci.yml", {}, dispatchable=False))
        octocat = FakeUser("octocat", 583231)
        history = [
            (shas[0], "Initial release", timedelta(days=3), ["in_progress", "success"]),
            (shas[1], "Add checkout retries", timedelta(days=1), ["in_progress", "success"]),
            (shas[2], "WIP: bump dependencies", timedelta(hours=2), ["in_progress", "failure"]),
            (shas[3], "Refactor payment client", timedelta(minutes=30), ["in_progress", "success"]),
        ]
        ids = []
        for sha, message, age, states in history:
            deployment = FakeDeployment(self._next_id(), sha, "main", environment, message, now - age, octocat)
            for offset, state in enumerate(states):
                deployment.statuses.insert(0, FakeStatus(self._next_id(), state, f"Deployment {state}", environment, now - age + timedelta(minutes=2 * offset + 1), octocat))
            repo.deployments.insert(0, deployment)
            ids.append(str(deployment.id))
        staging = FakeDeployment(self._next_id(), shas[3], "main", "staging", "Refactor payment client", now - timedelta(minutes=40), octocat)
        staging.statuses.insert(0, FakeStatus(self._next_id(), "success", "Deployment success", "staging", now - timedelta(minutes=38), octocat))
        repo.deployments.insert(1, staging)
        repo.live_sha = shas[3]
        repo.bad_shas = {shas[3]}
        self.repos[full_name] = repo
        seeded = SeededService(full_name, alias or name, live_id=ids[3], target_id=ids[1], failed_id=ids[2], oldest_id=ids[0])
        self.seeded[full_name] = seeded
        return seeded

    def fail_next_run(self, conclusion: str = "failure") -> None:
        self._next_conclusion = conclusion

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _advance(self, run: FakeRun, repo: FakeRepo) -> None:
        if not run.pending_steps:
            return
        run.status, run.conclusion = run.pending_steps.pop(0)
        run.updated_at = self.clock.now()
        if run.status == "completed" and run.conclusion == "success":
            repo.live_sha = run.inputs.get("sha") or run.head_sha  # what the workflow deployed

    # -- health, auth, errors

    def _repo_by_key(self, key: str) -> FakeRepo | None:
        return self.repos.get(key) or next((r for r in self.repos.values() if key in (r.alias, r.name)), None)

    def is_healthy(self, service: str) -> bool | None:
        repo = self._repo_by_key(service)
        if repo is None:
            return None
        return repo.live_sha is not None and repo.live_sha not in repo.bad_shas

    def describe_live(self, service: str) -> str | None:
        repo = self._repo_by_key(service)
        return repo.live_sha if repo else None

    def authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") in (f"token {self.token}", f"Bearer {self.token}")

    def error_response(self, status: int, message: str, *, code: str | None = None, headers: dict[str, str] | None = None) -> web.Response:
        return web.json_response({"message": message, "documentation_url": DOCS, "status": str(status)}, status=status, headers=headers)

    def unauthorized_response(self) -> web.Response:
        return self.error_response(401, "Bad credentials")

    def _not_found(self) -> web.Response:
        return self.error_response(404, "Not Found")

    # -- JSON shapes (keys as in PyGithub's recordings)

    def _repo_urls(self, repo: FakeRepo) -> dict[str, Any]:
        api, full = self.url, repo.full_name
        base = f"{api}/repos/{full}"
        templates = {
            "forks_url": "/forks", "keys_url": "/keys{/key_id}", "collaborators_url": "/collaborators{/collaborator}",
            "teams_url": "/teams", "hooks_url": "/hooks", "issue_events_url": "/issues/events{/number}",
            "events_url": "/events", "assignees_url": "/assignees{/user}", "branches_url": "/branches{/branch}",
            "tags_url": "/tags", "blobs_url": "/git/blobs{/sha}", "git_tags_url": "/git/tags{/sha}",
            "git_refs_url": "/git/refs{/sha}", "trees_url": "/git/trees{/sha}", "statuses_url": "/statuses/{sha}",
            "languages_url": "/languages", "stargazers_url": "/stargazers", "contributors_url": "/contributors",
            "subscribers_url": "/subscribers", "subscription_url": "/subscription", "commits_url": "/commits{/sha}",
            "git_commits_url": "/git/commits{/sha}", "comments_url": "/comments{/number}",
            "issue_comment_url": "/issues/comments{/number}", "contents_url": "/contents/{+path}",
            "compare_url": "/compare/{base}...{head}", "merges_url": "/merges", "archive_url": "/{archive_format}{/ref}",
            "downloads_url": "/downloads", "issues_url": "/issues{/number}", "pulls_url": "/pulls{/number}",
            "milestones_url": "/milestones{/number}", "notifications_url": "/notifications{?since,all,participating}",
            "labels_url": "/labels{/name}", "releases_url": "/releases{/id}", "deployments_url": "/deployments",
        }
        return {
            "id": repo.id,
            "node_id": _node_id("R", repo.id),
            "name": repo.name,
            "full_name": full,
            "private": True,
            "owner": repo.owner.to_json(api),
            "html_url": f"https://github.com/{full}",
            "description": "The shop",
            "fork": False,
            "url": base,
            **{key: base + suffix for key, suffix in templates.items()},
        }

    def _repo_json(self, repo: FakeRepo) -> dict[str, Any]:
        full = repo.full_name
        created = datetime(2024, 2, 1, 10, 0, tzinfo=UTC)
        return self._repo_urls(repo) | {
            "created_at": _ts(created), "updated_at": _ts(self.clock.now()), "pushed_at": _ts(self.clock.now()),
            "git_url": f"git://github.com/{full}.git", "ssh_url": f"git@github.com:{full}.git",
            "clone_url": f"https://github.com/{full}.git", "svn_url": f"https://github.com/{full}",
            "homepage": None, "size": 2048, "stargazers_count": 0, "watchers_count": 0, "language": "Python",
            "has_issues": True, "has_projects": False, "has_downloads": True, "has_wiki": False, "has_pages": False,
            "has_discussions": False, "forks_count": 0, "mirror_url": None, "archived": False, "disabled": False,
            "open_issues_count": 0, "license": None, "allow_forking": False, "is_template": False,
            "web_commit_signoff_required": False, "topics": [], "visibility": "private", "forks": 0,
            "open_issues": 0, "watchers": 0, "default_branch": repo.default_branch, "temp_clone_token": None,
            "allow_squash_merge": True, "allow_merge_commit": True, "allow_rebase_merge": True,
            "allow_auto_merge": False, "delete_branch_on_merge": True, "allow_update_branch": False,
            "use_squash_pr_title_as_default": False, "squash_merge_commit_message": "COMMIT_MESSAGES",
            "squash_merge_commit_title": "COMMIT_OR_PR_TITLE", "merge_commit_message": "PR_TITLE",
            "merge_commit_title": "MERGE_MESSAGE", "custom_properties": {},
            "security_and_analysis": {"secret_scanning": {"status": "disabled"}},
            "permissions": {"admin": False, "maintain": False, "push": True, "triage": True, "pull": True},
            "organization": repo.owner.to_json(self.url), "network_count": 0, "subscribers_count": 1,
        }

    def _workflow_json(self, repo: FakeRepo, workflow: FakeWorkflow) -> dict[str, Any]:
        return {
            "id": workflow.id,
            "node_id": _node_id("W", workflow.id),
            "name": workflow.name,
            "path": workflow.path,
            "state": "active",
            "created_at": workflow.created_at.isoformat(timespec="milliseconds"),
            "updated_at": workflow.created_at.isoformat(timespec="milliseconds"),
            "url": f"{self.url}/repos/{repo.full_name}/actions/workflows/{workflow.id}",
            "html_url": f"https://github.com/{repo.full_name}/blob/{repo.default_branch}/{workflow.path}",
            "badge_url": f"https://github.com/{repo.full_name}/workflows/{workflow.name}/badge.svg",
        }

    def _run_json(self, repo: FakeRepo, run: FakeRun) -> dict[str, Any]:
        base = f"{self.url}/repos/{repo.full_name}"
        head_commit = {
            "id": run.head_sha,
            "tree_id": run.head_sha[::-1],
            "message": "Rollback workflow run",
            "timestamp": _ts(run.created_at),
            "author": {"name": run.actor.login, "email": f"{run.actor.login}@example.com"},
            "committer": {"name": "GitHub", "email": "noreply@github.com"},
        }
        return {
            "id": run.id,
            "name": run.workflow.name,
            "node_id": _node_id("WFR", run.id),
            "head_branch": run.head_branch,
            "head_sha": run.head_sha,
            "path": run.workflow.path,
            "display_title": run.display_title,
            "run_number": run.run_number,
            "event": run.event,
            "status": run.status,
            "conclusion": run.conclusion,
            "workflow_id": run.workflow.id,
            "check_suite_id": run.id + 1,
            "check_suite_node_id": _node_id("CS", run.id + 1),
            "url": f"{base}/actions/runs/{run.id}",
            "html_url": f"https://github.com/{repo.full_name}/actions/runs/{run.id}",
            "pull_requests": [],
            "created_at": _ts(run.created_at),
            "updated_at": _ts(run.updated_at or run.created_at),
            "actor": run.actor.to_json(self.url),
            "triggering_actor": run.actor.to_json(self.url),
            "run_attempt": 1,
            "run_started_at": _ts(run.created_at),
            "jobs_url": f"{base}/actions/runs/{run.id}/jobs",
            "logs_url": f"{base}/actions/runs/{run.id}/logs",
            "check_suite_url": f"{base}/check-suites/{run.id + 1}",
            "artifacts_url": f"{base}/actions/runs/{run.id}/artifacts",
            "cancel_url": f"{base}/actions/runs/{run.id}/cancel",
            "rerun_url": f"{base}/actions/runs/{run.id}/rerun",
            "previous_attempt_url": None,
            "workflow_url": f"{base}/actions/workflows/{run.workflow.id}",
            "head_commit": head_commit,
            "repository": self._repo_urls(repo),
            "head_repository": self._repo_urls(repo),
        }

    def _deployment_json(self, repo: FakeRepo, deployment: FakeDeployment) -> dict[str, Any]:
        base = f"{self.url}/repos/{repo.full_name}"
        return {
            "url": f"{base}/deployments/{deployment.id}",
            "id": deployment.id,
            "node_id": _node_id("DE", deployment.id),
            "sha": deployment.sha,
            "ref": deployment.ref,
            "task": deployment.task,
            "payload": deployment.payload,
            "original_environment": deployment.environment,
            "environment": deployment.environment,
            "description": deployment.description,
            "creator": deployment.creator.to_json(self.url),
            "created_at": _ts(deployment.created_at),
            "updated_at": _ts(deployment.statuses[0].created_at if deployment.statuses else deployment.created_at),
            "statuses_url": f"{base}/deployments/{deployment.id}/statuses",
            "repository_url": base,
            "transient_environment": deployment.transient_environment,
            "production_environment": deployment.production_environment,
            "performed_via_github_app": None,
        }

    def _status_json(self, repo: FakeRepo, deployment: FakeDeployment, status: FakeStatus) -> dict[str, Any]:
        base = f"{self.url}/repos/{repo.full_name}"
        return {
            "url": f"{base}/deployments/{deployment.id}/statuses/{status.id}",
            "id": status.id,
            "node_id": _node_id("DES", status.id),
            "state": status.state,
            "creator": status.creator.to_json(self.url),
            "description": status.description,
            "environment": status.environment,
            "target_url": status.target_url or status.log_url,
            "created_at": _ts(status.created_at),
            "updated_at": _ts(status.created_at),
            "deployment_url": f"{base}/deployments/{deployment.id}",
            "repository_url": base,
            "environment_url": status.environment_url,
            "log_url": status.log_url or status.target_url,
            "performed_via_github_app": None,
        }

    # -- helpers

    def _lookup(self, request: web.Request) -> FakeRepo | None:
        return self.repos.get(f"{request.match_info['owner']}/{request.match_info['repo']}")

    def _paginate(self, request: web.Request, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
        try:
            per_page = max(1, min(100, int(request.query.get("per_page", "30"))))
            page = max(1, int(request.query.get("page", "1")))
        except ValueError:
            per_page, page = 30, 1
        start = (page - 1) * per_page
        chunk = items[start : start + per_page]
        headers: dict[str, str] = {}
        last = max(1, -(-len(items) // per_page))
        if page < last:
            def link(n: int) -> str:
                query = {**request.query, "per_page": str(per_page), "page": str(n)}
                return f"<{self.url}{request.path}?{urlencode(query)}>"
            headers["Link"] = f'{link(page + 1)}; rel="next", {link(last)}; rel="last"'
        return chunk, headers

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any] | None:
        try:
            body = await request.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    # -- handlers

    async def _user(self, request: web.Request) -> web.Response:
        created = _ts(datetime(2025, 1, 6, 9, 0, tzinfo=UTC))
        profile = {
            "name": "Firebreak", "company": None, "blog": "", "location": None, "email": None, "hireable": None,
            "bio": None, "twitter_username": None, "public_repos": 0, "public_gists": 0, "followers": 0,
            "following": 0, "created_at": created, "updated_at": created,
        }
        return web.json_response(self.bot_user.to_json(self.url) | profile)

    async def _repo(self, request: web.Request) -> web.Response:
        repo = self._lookup(request)
        return web.json_response(self._repo_json(repo)) if repo else self._not_found()

    async def _workflow(self, request: web.Request) -> web.Response:
        repo = self._lookup(request)
        workflow = repo.workflow(request.match_info["workflow"]) if repo else None
        if repo is None or workflow is None:
            return self._not_found()
        return web.json_response(self._workflow_json(repo, workflow))

    async def _dispatch(self, request: web.Request) -> web.Response:
        repo = self._lookup(request)
        workflow = repo.workflow(request.match_info["workflow"]) if repo else None
        if repo is None or workflow is None:
            return self._not_found()
        body = await self._body(request)
        if body is None or not isinstance(body.get("ref"), str):
            return self.error_response(422, "Invalid request.\n\n\"ref\" wasn't supplied.")
        if not workflow.dispatchable:
            return self.error_response(422, "Workflow does not have 'workflow_dispatch' trigger")
        ref = body["ref"].removeprefix("refs/heads/")
        if ref not in repo.branches:
            return self.error_response(422, f"No ref found for: {body['ref']}")
        inputs = body.get("inputs") or {}
        if not isinstance(inputs, dict):
            return self.error_response(422, "Invalid request.\n\nFor 'properties/inputs', is not an object.")
        unexpected = sorted(set(inputs) - set(workflow.inputs))
        if unexpected:
            return self.error_response(422, f"Unexpected inputs provided: {unexpected}".replace("'", '"'))
        for name, required in workflow.inputs.items():
            if required and not inputs.get(name):
                return self.error_response(422, f"Required input '{name}' not provided")
        self.dispatch_calls += 1
        steps = list(self.run_steps)
        if self._next_conclusion:
            steps[-1] = ("completed", self._next_conclusion)
            self._next_conclusion = None
        status, conclusion = steps.pop(0)
        run = FakeRun(
            self._next_id(), workflow, len([r for r in repo.runs if r.workflow is workflow]) + 1, ref,
            repo.branches[ref], "workflow_dispatch", {k: str(v) for k, v in inputs.items()}, self.clock.now(),
            self.bot_user, status, conclusion, pending_steps=steps,
        )
        repo.runs.insert(0, run)
        if body.get("return_run_details"):
            return web.json_response({
                "workflow_run_id": run.id,
                "run_url": f"{self.url}/repos/{repo.full_name}/actions/runs/{run.id}",
                "html_url": f"https://github.com/{repo.full_name}/actions/runs/{run.id}",
            })
        return web.Response(status=204)

    async def _list_runs(self, request: web.Request) -> web.Response:
        repo = self._lookup(request)
        if repo is None:
            return self._not_found()
        runs = repo.runs
        if "workflow" in request.match_info:
            workflow = repo.workflow(request.match_info["workflow"])
            if workflow is None:
                return self._not_found()
            runs = [r for r in runs if r.workflow is workflow]
        query = request.query
        if event := query.get("event"):
            runs = [r for r in runs if r.event == event]
        if branch := query.get("branch"):
            runs = [r for r in runs if r.head_branch == branch]
        if status := query.get("status"):
            runs = [r for r in runs if status in (r.status, r.conclusion)]
        if created := query.get("created"):
            test = _created_filter(created)
            if test is None:
                return self.error_response(422, f"Invalid created filter: {created}")
            runs = [r for r in runs if test(r.created_at)]
        page, headers = self._paginate(request, runs)
        return web.json_response(
            {"total_count": len(runs), "workflow_runs": [self._run_json(repo, r) for r in page]}, headers=headers
        )

    async def _run(self, request: web.Request) -> web.Response:
        repo = self._lookup(request)
        run = next((r for r in repo.runs if str(r.id) == request.match_info["run_id"]), None) if repo else None
        if repo is None or run is None:
            return self._not_found()
        self._advance(run, repo)
        return web.json_response(self._run_json(repo, run))

    async def _list_deployments(self, request: web.Request) -> web.Response:
        repo = self._lookup(request)
        if repo is None:
            return self._not_found()
        deployments = repo.deployments
        for key in ("environment", "sha", "ref", "task"):
            if value := request.query.get(key):
                deployments = [d for d in deployments if getattr(d, key) == value]
        page, headers = self._paginate(request, deployments)
        return web.json_response([self._deployment_json(repo, d) for d in page], headers=headers)

    async def _create_deployment(self, request: web.Request) -> web.Response:
        repo = self._lookup(request)
        if repo is None:
            return self._not_found()
        body = await self._body(request)
        if body is None or not isinstance(body.get("ref"), str):
            return self.error_response(422, "Invalid request.\n\n\"ref\" wasn't supplied.")
        ref = body["ref"]
        sha = ref if _SHA.match(ref) else repo.branches.get(ref.removeprefix("refs/heads/"))
        if sha is None:
            return self.error_response(422, f"No ref found for: {ref}")
        environment = str(body.get("environment") or "production")
        deployment = FakeDeployment(
            self._next_id(), sha, ref, environment, str(body.get("description") or ""), self.clock.now(),
            self.bot_user, payload=body.get("payload") if isinstance(body.get("payload"), dict) else {},
            task=str(body.get("task") or "deploy"),
            transient_environment=bool(body.get("transient_environment", False)),
            production_environment=bool(body.get("production_environment", environment == "production")),
        )
        repo.deployments.insert(0, deployment)
        return web.json_response(self._deployment_json(repo, deployment), status=201)

    def _find_deployment(self, request: web.Request) -> tuple[FakeRepo, FakeDeployment] | None:
        repo = self._lookup(request)
        if repo is None:
            return None
        deployment = next((d for d in repo.deployments if str(d.id) == request.match_info["deployment_id"]), None)
        return (repo, deployment) if deployment else None

    async def _deployment(self, request: web.Request) -> web.Response:
        found = self._find_deployment(request)
        return web.json_response(self._deployment_json(*found)) if found else self._not_found()

    async def _list_statuses(self, request: web.Request) -> web.Response:
        found = self._find_deployment(request)
        if found is None:
            return self._not_found()
        repo, deployment = found
        page, headers = self._paginate(request, deployment.statuses)
        return web.json_response([self._status_json(repo, deployment, s) for s in page], headers=headers)

    async def _create_status(self, request: web.Request) -> web.Response:
        found = self._find_deployment(request)
        if found is None:
            return self._not_found()
        repo, deployment = found
        body = await self._body(request)
        state = body.get("state") if body else None
        if state not in DEPLOYMENT_STATES:
            return self.error_response(422, f"Validation Failed: state {state!r} is not one of {sorted(DEPLOYMENT_STATES)}")
        assert body is not None
        now = self.clock.now()
        status = FakeStatus(
            self._next_id(), state, str(body.get("description") or ""), str(body.get("environment") or deployment.environment),
            now, self.bot_user, target_url=str(body.get("target_url") or ""), environment_url=str(body.get("environment_url") or ""),
            log_url=str(body.get("log_url") or ""),
        )
        deployment.statuses.insert(0, status)
        if state == "success" and body.get("auto_inactive", True):
            # GitHub marks earlier successful deployments of the environment inactive
            # (docs: non-transient, non-production ones).
            for other in repo.deployments:
                if (
                    other is not deployment
                    and other.environment == deployment.environment
                    and other.state == "success"
                    and not other.transient_environment
                    and not other.production_environment
                ):
                    other.statuses.insert(0, FakeStatus(self._next_id(), "inactive", "", other.environment, now, self.bot_user))
        return web.json_response(self._status_json(repo, deployment, status), status=201)


def _created_filter(expression: str) -> Any:
    """GitHub's ``created`` qualifier: ``>=2026-03-02T14:00:00Z``, ``<DATE``, ``A..B``, ``DATE``."""

    def parse(text: str) -> datetime | None:
        text = text.strip().replace(" ", "+")
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            return None
        return utc(value)

    for op in (">=", "<=", ">", "<"):
        if expression.startswith(op):
            bound = parse(expression[len(op):])
            if bound is None:
                return None
            return {
                ">=": lambda t, bound=bound: utc(t) >= bound,
                "<=": lambda t, bound=bound: utc(t) <= bound,
                ">": lambda t, bound=bound: utc(t) > bound,
                "<": lambda t, bound=bound: utc(t) < bound,
            }[op]
    if ".." in expression:
        low, high = (parse(p) for p in expression.split("..", 1))
        if low is None or high is None:
            return None
        return lambda t: low <= utc(t) <= high
    day = parse(expression)
    if day is None:
        return None
    return lambda t: day <= utc(t) < day + timedelta(days=1)
