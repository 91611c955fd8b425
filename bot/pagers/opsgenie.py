"""Opsgenie Alert API pager for ``opsgenie:<team>`` targets.

Alerts are created with ``alias = firebreak-INC-<n>-<team>``: Opsgenie
de-duplicates an open alert with the same alias (across the account), so
repeated pages to a team (retries, a repeated level, a page sent again after a
crash) only raise its count, and acknowledge/close address it by alias. The
team is part of the alias because a de-duplicated request adds no responder: a
second team paged for the same incident under one alias would never hear of it.
Opsgenie processes alert requests asynchronously: 202 means *accepted*, with a
``requestId`` whose outcome can be read at ``/v2/alerts/requests/{requestId}``.

Field limits from Opsgenie's Alert API documentation are applied here
(truncated, never refused): message 130, alias 512, description 15,000,
source/user 100, note 25,000, entity 512, 20 tags of 50, details 8,000 in total.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import aiohttp
from pydantic import SecretStr

from bot.pagers.base import PageRequest, PagerError, PageResult, split_target, truncate
from bot.pagers.http import HttpAnswer, RetryPolicy, post_json

MESSAGE_LIMIT = 130
ALIAS_LIMIT = 512
DESCRIPTION_LIMIT = 15_000
SOURCE_LIMIT = 100
USER_LIMIT = 100
NOTE_LIMIT = 25_000
ENTITY_LIMIT = 512
TAG_LIMIT = 50
TAGS_MAX = 20
DETAILS_TOTAL_LIMIT = 8_000

SOURCE = "Firebreak"

# Opsgenie's scale is P1 (critical) to P5 (informational); Firebreak's is P0 to P3.
PRIORITY_MAP: Mapping[str, str] = {"P0": "P1", "P1": "P2", "P2": "P3", "P3": "P4"}


def priority_note(severity: str) -> str:
    """Why the alert of a ``severity`` incident has its priority, wherever the priority is shown
    (the alert itself, ``firebreak playbooks check``, the demo): ``P2 for a P1 incident (…)``."""
    return (f"{PRIORITY_MAP[severity]} for a {severity} incident "
            "(Firebreak's P0–P3 are Opsgenie's P1–P4: Opsgenie counts from P1)")


def alert_alias(request: PageRequest, team: str) -> str:
    """The alias of the incident's alert for ``team``: ``firebreak-INC-12-ops``."""
    return truncate(f"{request.dedup_key}-{team}", ALIAS_LIMIT, ellipsis="")


def _why(request: PageRequest) -> str:
    if request.manual:
        return "Manual page" + (f" by {request.paged_by}" if request.paged_by else "")
    return f"Escalation level {request.level + 1}" + (f", repeat {request.repeat + 1}" if request.repeat else "")


def build_alert(team: str, request: PageRequest) -> dict[str, Any]:
    """The ``POST /v2/alerts`` body for paging ``team`` about the incident of ``request``."""
    lines = [
        f"{request.incident_ref} ({request.severity}): {request.incident_title}",
        _why(request),
        f"Priority {priority_note(request.severity)}.",
    ]
    if request.message:
        lines.append(request.message)
    channel_url = request.channel_url
    if channel_url:
        lines.append(f"Incident channel: {channel_url}")
    details = {
        "incident": request.incident_ref,
        "severity": request.severity,
    }
    if request.manual:
        details["page"] = "manual"
    else:
        details["escalation_level"] = str(request.level + 1)
    if channel_url:
        details["incident_channel"] = channel_url
    tags = ["firebreak", request.incident_ref, request.severity]
    return {
        "message": truncate(f"[{request.incident_ref}][{request.severity}] {request.incident_title}", MESSAGE_LIMIT),
        "alias": alert_alias(request, team),
        "description": truncate("\n".join(lines), DESCRIPTION_LIMIT),
        "priority": PRIORITY_MAP[request.severity],
        "responders": [{"name": team, "type": "team"}],
        "source": SOURCE,
        "entity": truncate(request.incident_ref, ENTITY_LIMIT),
        "tags": [truncate(tag, TAG_LIMIT) for tag in tags][:TAGS_MAX],
        "details": _fit_details(details),
    }


def _fit_details(details: dict[str, str]) -> dict[str, str]:
    """Drop trailing entries until keys plus values fit Opsgenie's 8,000-character limit."""
    fitted: dict[str, str] = {}
    used = 0
    for key, value in details.items():
        size = len(key) + len(value)
        if used + size > DETAILS_TOTAL_LIMIT:
            break
        fitted[key] = value
        used += size
    return fitted


def build_action_body(action: str, request: PageRequest) -> dict[str, Any]:
    """The body of ``acknowledge`` / ``close``: ``{source, user?, note}``."""
    verb = "Acknowledged" if action == "acknowledge" else "Closed"
    who = f" by {request.actor}" if request.actor else ""
    body: dict[str, Any] = {
        "source": SOURCE,
        "note": truncate(f"{verb}{who} in Firebreak ({request.incident_ref})", NOTE_LIMIT),
    }
    if request.actor:
        body["user"] = truncate(request.actor, USER_LIMIT)
    return body


def _error_message(answer: HttpAnswer) -> str:
    message = answer.get("message")
    errors = answer.get("errors")
    parts = [str(message)] if message else []
    if isinstance(errors, dict) and errors:
        parts.append("; ".join(f"{k}: {v}" for k, v in errors.items()))
    if not parts and isinstance(answer.body, str) and answer.body:
        parts.append(truncate(answer.body, 300))
    return ": ".join(parts) or "no message"


class OpsgeniePager:
    """Creates, acknowledges and closes Opsgenie alerts for a responder team."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        api_url: str,
        api_key: SecretStr | None,
        *,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._session = session
        self._api_url = api_url.rstrip("/")
        self._api_key = api_key
        self._retry = retry or RetryPolicy()

    def _team(self, target: str) -> str:
        kind, team = split_target(target)
        if kind != "opsgenie":
            raise PagerError(f"{target!r} is not an opsgenie: target", transient=False, target=target)
        return team

    def _headers(self, target: str) -> dict[str, str]:
        if self._api_key is None:
            raise PagerError(
                f"cannot page {target!r}: set OPSGENIE_API_KEY", transient=False, target=target
            )
        return {"Authorization": f"GenieKey {self._api_key.get_secret_value()}"}

    async def _post(
        self, target: str, path: str, body: Mapping[str, Any], params: Mapping[str, str] | None = None
    ) -> HttpAnswer:
        headers = self._headers(target)
        try:
            answer = await post_json(
                self._session,
                self._api_url + path,
                body,
                provider="Opsgenie",
                policy=self._retry,
                headers=headers,
                params=params,
            )
        except PagerError as exc:
            exc.target = target
            raise
        if answer.status in (200, 201, 202):
            return answer
        message = _error_message(answer)
        if key := self._api_key.get_secret_value() if self._api_key is not None else "":
            message = message.replace(key, "[redacted]")  # a refusal may quote the key it was sent
        raise PagerError(
            f"Opsgenie refused the request for {target!r} (HTTP {answer.status}): {message}",
            transient=False,
            target=target,
        )

    async def page(self, target: str, request: PageRequest) -> PageResult:
        body = build_alert(self._team(target), request)
        answer = await self._post(target, "/v2/alerts", body)
        ids = {"alias": body["alias"]}
        request_id = answer.get("requestId")
        if request_id:
            ids["request_id"] = str(request_id)
        return PageResult(
            target=target,
            delivered=True,
            detail=str(answer.get("result") or "Request will be processed"),
            provider_ids=ids,
        )

    async def _alert_action(self, target: str, action: str, request: PageRequest) -> None:
        alias = quote(alert_alias(request, self._team(target)), safe="")
        await self._post(
            target,
            f"/v2/alerts/{alias}/{action}",
            build_action_body(action, request),
            params={"identifierType": "alias"},
        )

    async def acknowledge(self, target: str, request: PageRequest) -> None:
        await self._alert_action(target, "acknowledge", request)

    async def resolve(self, target: str, request: PageRequest) -> None:
        await self._alert_action(target, "close", request)
