"""A local fake of Railway's public GraphQL API (``RAILWAY_API_URL`` = ``fake.api_url``).

``POST /graphql/v2`` executes the request with graphql-core against
:data:`FAKE_SCHEMA_SDL`, a subset of Railway's schema whose types and fields are
spelled exactly as in the official introspection (a test checks it):

- ``deployments(input: {projectId, environmentId, serviceId}, first: N)`` → edges, newest first;
- ``deployment(id)``;
- ``mutation($id: String!) { deploymentRollback(id: $id) }`` → ``Boolean!``.

Errors come as ``{"data": null, "errors": [{"message": ...}]}`` with HTTP 200
(a bad token: "Not Authorized"; an unknown id: "Deployment not found"), and
HTTP 400 for a document that does not validate. A rollback creates a new
deployment (``INITIALIZING``) that each later query moves through
``DEPLOYING`` to ``SUCCESS`` (the one it replaced becomes ``REMOVED``), or to
``FAILED`` when scripted with :meth:`RailwayFake.fail_next_rollback`.
Tests inject ``validator`` to check every document against the official schema.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from graphql import GraphQLError, build_schema, graphql

from bot.emulator.providers._server import FakeProviderServer, SeededService, iso_z

FAKE_SCHEMA_SDL = """
scalar DateTime
scalar DeploymentMeta

enum DeploymentStatus {
  BUILDING CRASHED DEPLOYING FAILED INITIALIZING NEEDS_APPROVAL QUEUED
  REMOVED REMOVING SKIPPED SLEEPING SUCCESS WAITING
}

input DeploymentStatusInput { in: [DeploymentStatus!] notIn: [DeploymentStatus!] }

input DeploymentListInput {
  environmentId: String
  includeDeleted: Boolean
  projectId: String
  serviceId: String
  status: DeploymentStatusInput
}

type DeploymentCreator { avatar: String email: String! id: String! name: String }

type Deployment {
  canRedeploy: Boolean!
  canRollback: Boolean!
  createdAt: DateTime!
  creator: DeploymentCreator
  deploymentStopped: Boolean!
  environmentId: String!
  id: ID!
  meta: DeploymentMeta
  projectId: String!
  serviceId: String
  staticUrl: String
  status: DeploymentStatus!
  statusUpdatedAt: DateTime
  updatedAt: DateTime!
  url: String
}

type PageInfo { endCursor: String hasNextPage: Boolean! hasPreviousPage: Boolean! startCursor: String }
type QueryDeploymentsConnectionEdge { cursor: String! node: Deployment! }
type QueryDeploymentsConnection { edges: [QueryDeploymentsConnectionEdge!]! pageInfo: PageInfo! }

type Query {
  deployment(id: String!): Deployment!
  deployments(after: String, before: String, first: Int, input: DeploymentListInput!, last: Int): QueryDeploymentsConnection!
}

type Mutation {
  deploymentRollback(id: String!): Boolean!
}
"""

FAKE_SCHEMA = build_schema(FAKE_SCHEMA_SDL)
ROLLBACK_STEPS = ("INITIALIZING", "DEPLOYING", "DEPLOYING", "SUCCESS")
_WAS_LIVE = {"SUCCESS", "REMOVED", "SLEEPING"}


@dataclass(slots=True)
class RailwayDeployment:
    id: str
    status: str
    created_at: datetime
    commit_hash: str
    commit_message: str
    project_id: str
    environment_id: str
    service_id: str
    bad: bool = False
    reason: str = "deploy"
    pending_steps: list[str] = field(default_factory=list)
    updated_at: datetime | None = None
    rollback_of: str | None = None  # the deployment a rollback redeployed (not in Railway's API)

    def to_node(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "createdAt": iso_z(self.created_at),
            "updatedAt": iso_z(self.updated_at or self.created_at),
            "statusUpdatedAt": iso_z(self.updated_at or self.created_at),
            "canRollback": self.status in _WAS_LIVE,
            "canRedeploy": True,
            "deploymentStopped": self.status == "REMOVED",
            "projectId": self.project_id,
            "environmentId": self.environment_id,
            "serviceId": self.service_id,
            "staticUrl": "api-production-fake.up.railway.app",
            "url": "https://api-production-fake.up.railway.app",
            "meta": {
                "commitHash": self.commit_hash,
                "commitMessage": self.commit_message,
                "commitAuthor": "octocat",
                "branch": "main",
                "reason": self.reason,
            },
            "creator": {"id": "usr-fake-0001", "email": "octocat@example.com", "name": "Octo Cat", "avatar": None},
        }


@dataclass(slots=True)
class RailwayService:
    project_id: str
    environment_id: str
    service_id: str
    name: str
    deployments: list[RailwayDeployment] = field(default_factory=list)  # newest first

    @property
    def live(self) -> RailwayDeployment | None:
        return next((d for d in self.deployments if d.status in ("SUCCESS", "SLEEPING")), None)


class RailwayFake(FakeProviderServer):
    provider = "railway"
    api_prefix = "/graphql/v2"
    validation_status = 400

    def __init__(self, *, seed: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.services: dict[str, RailwayService] = {}
        self.seeded: dict[str, SeededService] = {}
        self.rollback_steps: tuple[str, ...] = ROLLBACK_STEPS
        self.rollback_calls = 0
        self._next_failure: str | None = None
        self.app.router.add_post("/graphql/v2", self._graphql)
        if seed:
            self.seed_service(
                "3f1c7a52-0000-4000-8000-00000000a001",
                project_id="3f1c7a52-0000-4000-8000-00000000b001",
                environment_id="3f1c7a52-0000-4000-8000-00000000c001",
                name="api",
            )

    # -- seeding and scripting

    def seed_service(self, service_id: str, *, project_id: str, environment_id: str, name: str | None = None) -> SeededService:
        now = self.clock.now()
        specs = [
            ("SUCCESS", timedelta(minutes=30), "d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3", "Refactor payment client", True),
            ("FAILED", timedelta(hours=2), "c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2", "WIP: bump dependencies", False),
            ("REMOVED", timedelta(days=1), "b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1", "Add checkout retries", False),
            ("REMOVED", timedelta(days=3), "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0", "Initial release", False),
        ]
        deployments = [
            RailwayDeployment(str(uuid.uuid5(uuid.NAMESPACE_URL, f"{service_id}/{i}")), status, now - age, sha, message,
                              project_id, environment_id, service_id, bad=bad)
            for i, (status, age, sha, message, bad) in enumerate(specs)
        ]
        self.services[service_id] = RailwayService(project_id, environment_id, service_id, name or service_id, deployments)
        ids = [d.id for d in deployments]
        seeded = SeededService(service_id, name or service_id, live_id=ids[0], target_id=ids[2], failed_id=ids[1], oldest_id=ids[3])
        self.seeded[service_id] = seeded
        return seeded

    def fail_next_rollback(self, status: str = "FAILED") -> None:
        self._next_failure = status

    def _find_service(self, key: str) -> RailwayService | None:
        return self.services.get(key) or next((s for s in self.services.values() if s.name == key), None)

    def _find_deployment(self, deployment_id: str) -> tuple[RailwayService, RailwayDeployment] | None:
        for service in self.services.values():
            for deployment in service.deployments:
                if deployment.id == deployment_id:
                    return service, deployment
        return None

    def _advance(self, service: RailwayService) -> None:
        for deployment in service.deployments:
            if not deployment.pending_steps:
                continue
            deployment.status = deployment.pending_steps.pop(0)
            deployment.updated_at = self.clock.now()
            if deployment.status == "SUCCESS":
                for other in service.deployments:
                    if other is not deployment and other.status in ("SUCCESS", "SLEEPING"):
                        other.status = "REMOVED"
            if deployment.status not in ("INITIALIZING", "BUILDING", "DEPLOYING", "QUEUED", "WAITING"):
                deployment.pending_steps.clear()

    # -- health, auth, errors

    def is_healthy(self, service: str) -> bool | None:
        found = self._find_service(service)
        if found is None:
            return None
        live = found.live
        return live is not None and not live.bad

    def describe_live(self, service: str) -> str | None:
        found = self._find_service(service)
        live = found.live if found else None
        if live is None:
            return None
        return f"{live.id} (redeploy of {live.rollback_of})" if live.rollback_of else live.id

    def authorized(self, request: web.Request) -> bool:
        return (
            request.headers.get("Authorization") == f"Bearer {self.token}"
            or request.headers.get("Project-Access-Token") == self.token
        )

    def error_response(self, status: int, message: str, *, code: str | None = None, headers: dict[str, str] | None = None) -> web.Response:
        body: dict[str, Any] = {"errors": [{"message": message, "extensions": {"code": code or "INTERNAL_SERVER_ERROR"}}]}
        return web.json_response(body, status=status, headers=headers)

    def unauthorized_response(self) -> web.Response:
        # Railway answers auth failures inside GraphQL errors, with HTTP 200.
        return web.json_response({"data": None, "errors": [{"message": "Not Authorized", "extensions": {"code": "UNAUTHORIZED"}}]})

    # -- GraphQL

    async def _graphql(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return self.error_response(400, "POST body must be JSON", code="BAD_REQUEST")
        query = body.get("query") if isinstance(body, dict) else None
        if not isinstance(query, str):
            return self.error_response(400, "Must provide query string.", code="BAD_REQUEST")
        result = await graphql(
            FAKE_SCHEMA,
            query,
            root_value=_Root(self),
            variable_values=body.get("variables") or None,
            operation_name=body.get("operationName"),
        )
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            payload["errors"] = [e.formatted for e in result.errors]
            if result.data is None and not any(e.path for e in result.errors):
                return web.json_response(payload, status=400)  # did not validate
        return web.json_response(payload)


class _Root:
    """Root resolvers: graphql-core calls ``root.<field>(info, **args)``."""

    def __init__(self, fake: RailwayFake) -> None:
        self.fake = fake

    def deployments(self, info: Any, input: dict[str, Any], first: int | None = None, **_: Any) -> dict[str, Any]:
        service = self.fake.services.get(input.get("serviceId") or "")
        if service is None or (input.get("projectId") not in (None, service.project_id)) or (
            input.get("environmentId") not in (None, service.environment_id)
        ):
            nodes: list[RailwayDeployment] = []
        else:
            self.fake._advance(service)
            nodes = service.deployments
        status = input.get("status") or {}
        if status.get("in"):
            nodes = [d for d in nodes if d.status in status["in"]]
        if status.get("notIn"):
            nodes = [d for d in nodes if d.status not in status["notIn"]]
        page = nodes[: first or len(nodes)]
        return {
            "edges": [{"cursor": d.id, "node": d.to_node()} for d in page],
            "pageInfo": {
                "hasNextPage": len(nodes) > len(page),
                "hasPreviousPage": False,
                "startCursor": page[0].id if page else None,
                "endCursor": page[-1].id if page else None,
            },
        }

    def deployment(self, info: Any, id: str) -> dict[str, Any]:
        found = self.fake._find_deployment(id)
        if found is None:
            raise GraphQLError("Deployment not found")
        service, deployment = found
        self.fake._advance(service)
        return deployment.to_node()

    def deploymentRollback(self, info: Any, id: str) -> bool:
        found = self.fake._find_deployment(id)
        if found is None:
            raise GraphQLError("Deployment not found")
        service, target = found
        if target.status not in _WAS_LIVE:
            raise GraphQLError("Deployment cannot be rolled back")
        if service.live is target:
            raise GraphQLError("Deployment is already active")
        fake = self.fake
        fake.rollback_calls += 1
        steps = list(fake.rollback_steps)
        if fake._next_failure:
            steps = [*steps[:-1], fake._next_failure]
            fake._next_failure = None
        new = RailwayDeployment(
            str(uuid.uuid4()),
            steps.pop(0),
            fake.clock.now(),
            target.commit_hash,
            target.commit_message,
            service.project_id,
            service.environment_id,
            service.service_id,
            bad=target.bad,
            reason="rollback",
            pending_steps=steps,
            rollback_of=target.id,
        )
        service.deployments.insert(0, new)
        return True
