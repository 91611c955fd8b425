"""A local fake of Opsgenie's Alert API, for tests and ``firebreak demo``.

    async with OpsgenieFake(api_keys={"0f3c...-uuid"}) as og:
        settings = load_settings(opsgenie_api_url=og.url, opsgenie_api_key=...)

Routes (``.url`` is the value for ``OPSGENIE_API_URL``):

- ``POST /v2/alerts`` → 202 ``{result, took, requestId}``; an open alert with the
  same ``alias`` (acknowledged or not; across the account) is de-duplicated: its
  ``count`` rises and nothing else changes (the request's responders are not
  added, nobody new is notified); a closed one is not.
- ``POST /v2/alerts/{identifier}/acknowledge|close?identifierType=alias|id``
  → 202; an unknown alert is still accepted (the request status says it failed),
  as Opsgenie processes alert requests asynchronously.
- ``GET /v2/alerts/{identifier}?identifierType=alias|id`` → 200 ``{data}`` or 404.
- ``GET /v2/alerts/requests/{requestId}`` → the outcome of an accepted request.

Authentication like Opsgenie: ``Authorization: GenieKey <key>``; a missing
header or unknown key → 401 ``Could not authenticate``; a key that is not a
UUID → 422 ``Key format is not valid!``. Bodies are checked against the
documented rules (message required, at most 130 characters; alias 512;
priority P1..P5; responders of type team/user/escalation/schedule with an id or
a name; ...) → 422 ``{message, errors: {field: problem}, took, requestId}``.
The fake is strict where Opsgenie would silently truncate, so that a client
that sends too much is caught in tests.

Faults as in :mod:`bot.emulator.pagerduty` (``og.faults.add(Fault.RATE_LIMIT)``).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bot.emulator.pagerduty import FakeHttpService, Fault, Validator

__all__ = ["FakeAlert", "Fault", "OpsgenieFake"]

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_PRIORITIES = ("P1", "P2", "P3", "P4", "P5")
_RESPONDER_TYPES = ("team", "user", "escalation", "schedule")

_LIMITS = {"message": 130, "alias": 512, "description": 15_000, "entity": 512, "source": 100, "user": 100, "note": 25_000}


@dataclass(slots=True)
class FakeAlert:
    id: str
    alias: str
    message: str
    priority: str
    responders: list[dict[str, Any]]
    description: str = ""
    tags: list[str] = field(default_factory=list)
    source: str = ""
    status: str = "open"  # open | closed
    acknowledged: bool = False
    count: int = 1
    notes: list[str] = field(default_factory=list)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_api(self) -> dict[str, Any]:
        return {
            "id": self.id, "tinyId": self.id[:4], "alias": self.alias, "message": self.message,
            "status": self.status, "acknowledged": self.acknowledged, "count": self.count,
            "priority": self.priority, "responders": self.responders, "tags": self.tags,
            "source": self.source, "createdAt": self.created_at.isoformat(),
        }


class OpsgenieFake(FakeHttpService):
    def __init__(self, api_keys: Iterable[str] = (), *, validator: Validator | None = None) -> None:
        super().__init__()
        self.api_keys = set(api_keys)
        self.validator = validator
        self.validation_errors: list[str] = []
        self.alerts: dict[str, FakeAlert] = {}
        """The latest alert per alias."""
        self.alert_history: list[FakeAlert] = []
        """Every alert ever created, oldest first."""
        self.request_statuses: dict[str, dict[str, Any]] = {}
        router = self.app.router
        router.add_post("/v2/alerts", self._create)
        router.add_get("/v2/alerts/requests/{request_id}", self._request_status)
        router.add_post("/v2/alerts/{identifier}/{action:acknowledge|close}", self._action)
        router.add_get("/v2/alerts/{identifier}", self._get)

    @property
    def url(self) -> str:
        """The value for ``OPSGENIE_API_URL``."""
        return self.base_url

    def alerts_for(self, alias: str) -> list[FakeAlert]:
        return [a for a in self.alert_history if a.alias == alias]

    # -- answers -------------------------------------------------------------------------

    @staticmethod
    def _answer(status: int, started: float, request_id: str | None = None, **body: Any) -> web.Response:
        body["took"] = round(time.monotonic() - started, 3)
        body["requestId"] = request_id or str(uuid.uuid4())
        return web.json_response(body, status=status)

    def fault_response(self, status: int, headers: dict[str, str]) -> web.Response:
        message = "You are making too many requests! To avoid errors, we recommend you limit requests." if status == 429 else "Internal Server Error"
        return web.json_response({"message": message, "took": 0.0, "requestId": str(uuid.uuid4())}, status=status, headers=headers)

    def _auth_problem(self, request: web.Request, started: float) -> web.Response | None:
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        key = key.strip()
        if scheme != "GenieKey" or not key:
            return self._answer(401, started, message="Could not authenticate")
        if key in self.api_keys:
            return None
        if not _UUID.match(key):
            return self._answer(422, started, message="Key format is not valid!")
        return self._answer(401, started, message="Could not authenticate")

    async def _json_body(self, request: web.Request) -> dict[str, Any] | None:
        try:
            body = json.loads(await request.text() or "{}")
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def _unprocessable(self, started: float, errors: dict[str, str]) -> web.Response:
        return self._answer(
            422, started, message="Request body is not processable. Please check the errors.", errors=errors
        )

    def _run_validator(self, body: dict[str, Any]) -> dict[str, str]:
        if self.validator is None:
            return {}
        try:
            self.validator(body)
        except Exception as exc:  # noqa: BLE001 - any validator failure is a refused request
            self.validation_errors.append(str(exc))
            return {"validator": str(exc)}
        return {}

    # -- validation ------------------------------------------------------------------------

    @staticmethod
    def _check_lengths(body: dict[str, Any], names: Iterable[str]) -> dict[str, str]:
        errors: dict[str, str] = {}
        for name in names:
            value = body.get(name)
            if value is None:
                continue
            if not isinstance(value, str):
                errors[name] = f"{name.capitalize()} must be a string."
            elif len(value) > _LIMITS[name]:
                errors[name] = f"{name.capitalize()} can not be longer than {_LIMITS[name]} characters."
        return errors

    def _check_alert(self, body: dict[str, Any]) -> dict[str, str]:
        errors = self._check_lengths(body, ("message", "alias", "description", "entity", "source", "user", "note"))
        message = body.get("message")
        if not isinstance(message, str) or not message.strip():
            errors["message"] = "Message can not be empty."
        priority = body.get("priority", "P3")
        if priority not in _PRIORITIES:
            errors["priority"] = "Priority should be one of [P1, P2, P3, P4, P5]."
        responders = body.get("responders", [])
        if not isinstance(responders, list) or len(responders) > 50:
            errors["responders"] = "Responders must be a list of at most 50 responders."
        else:
            for index, responder in enumerate(responders):
                problem = self._responder_problem(responder)
                if problem:
                    errors[f"responders[{index}]"] = problem
        tags = body.get("tags", [])
        if not isinstance(tags, list) or len(tags) > 20 or any(not isinstance(t, str) or len(t) > 50 for t in tags):
            errors["tags"] = "Tags must be at most 20 strings of at most 50 characters."
        details = body.get("details", {})
        if not isinstance(details, dict) or any(not isinstance(v, str) for v in details.values()):
            errors["details"] = "Details must be a map of strings."
        elif sum(len(k) + len(v) for k, v in details.items()) > 8000:
            errors["details"] = "Details can not be longer than 8000 characters in total."
        return errors

    @staticmethod
    def _responder_problem(responder: Any) -> str | None:
        if not isinstance(responder, dict):
            return "Responder must be an object."
        if responder.get("type") not in _RESPONDER_TYPES:
            return "Responder type must be one of [team, user, escalation, schedule]."
        keys = ("id", "username") if responder["type"] == "user" else ("id", "name")
        if not any(isinstance(responder.get(k), str) and responder[k].strip() for k in keys):
            return f"Responder of type {responder['type']} needs {' or '.join(keys)}."
        return None

    # -- routes ------------------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.Response:
        started = time.monotonic()
        if (problem := self._auth_problem(request, started)) is not None:
            return problem
        body = await self._json_body(request)
        if body is None:
            return self._unprocessable(started, {"body": "Request body is not valid JSON object."})
        errors = self._run_validator(body) | self._check_alert(body)
        if errors:
            return self._unprocessable(started, errors)
        alias = body.get("alias") or str(uuid.uuid4())
        current = self.alerts.get(alias)
        if current is not None and current.status == "open":
            current.count += 1
            status = "Alert is deduplicated"
            alert = current
        else:
            alert = FakeAlert(
                id=str(uuid.uuid4()), alias=alias, message=body["message"],
                priority=body.get("priority", "P3"), responders=list(body.get("responders", [])),
                description=body.get("description", ""), tags=list(body.get("tags", [])),
                source=body.get("source", ""),
            )
            self.alerts[alias] = alert
            self.alert_history.append(alert)
            status = "Created alert"
        request_id = self._record_status("Create", True, status, alert)
        return self._answer(202, started, request_id, result="Request will be processed")

    def _find(self, identifier: str, identifier_type: str) -> FakeAlert | None:
        if identifier_type == "alias":
            return self.alerts.get(identifier)
        if identifier_type in ("id", "tiny"):
            return next((a for a in self.alert_history if identifier in (a.id, a.id[:4])), None)
        return None

    async def _action(self, request: web.Request) -> web.Response:
        started = time.monotonic()
        if (problem := self._auth_problem(request, started)) is not None:
            return problem
        identifier_type = request.query.get("identifierType", "id")
        if identifier_type not in ("id", "alias", "tiny"):
            return self._unprocessable(started, {"identifierType": "Identifier type should be one of [id, alias, tiny]."})
        body = await self._json_body(request)
        if body is None:
            return self._unprocessable(started, {"body": "Request body is not valid JSON object."})
        errors = self._run_validator(body) | self._check_lengths(body, ("source", "user", "note"))
        if errors:
            return self._unprocessable(started, errors)
        action = request.match_info["action"]
        alert = self._find(request.match_info["identifier"], identifier_type)
        verb = "Acknowledge" if action == "acknowledge" else "Close"
        if alert is None or alert.status == "closed":
            request_id = self._record_status(verb, False, "Alert does not exist", alert)
        else:
            if action == "acknowledge":
                alert.acknowledged = True
            else:
                alert.status = "closed"
            if body.get("note"):
                alert.notes.append(str(body["note"]))
            request_id = self._record_status(verb, True, f"{verb}d alert", alert)
        return self._answer(202, started, request_id, result="Request will be processed")

    async def _get(self, request: web.Request) -> web.Response:
        started = time.monotonic()
        if (problem := self._auth_problem(request, started)) is not None:
            return problem
        alert = self._find(request.match_info["identifier"], request.query.get("identifierType", "id"))
        if alert is None:
            return self._answer(404, started, message="Alert does not exist")
        return self._answer(200, started, data=alert.as_api())

    async def _request_status(self, request: web.Request) -> web.Response:
        started = time.monotonic()
        if (problem := self._auth_problem(request, started)) is not None:
            return problem
        status = self.request_statuses.get(request.match_info["request_id"])
        if status is None:
            return self._answer(404, started, message="Request does not exist")
        return self._answer(200, started, data=status)

    def _record_status(self, action: str, success: bool, status: str, alert: FakeAlert | None) -> str:
        request_id = str(uuid.uuid4())
        self.request_statuses[request_id] = {
            "success": success, "isSuccess": success, "action": action, "status": status,
            "processedAt": datetime.now(UTC).isoformat(),
            "alertId": alert.id if alert else "", "alias": alert.alias if alert else "",
        }
        return request_id
