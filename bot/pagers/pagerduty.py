"""PagerDuty Events API v2 pager for ``pagerduty:<name>`` targets.

Events go to ``PAGERDUTY_EVENTS_URL`` with the routing key read from
``PAGERDUTY_ROUTING_KEY_<NAME>``. Every event of an incident carries
``dedup_key = firebreak-INC-<n>``: repeated triggers (retries, later escalation
levels, a page sent again after a crash, several replicas) update the same
PagerDuty alert instead of opening a new incident, and ``acknowledge``/``resolve``
reach that same alert. PagerDuty de-duplicates per service (routing key), so two
``pagerduty:`` targets on different services each get their own alert.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import aiohttp
from pydantic import SecretStr

from bot.pagers.base import PageRequest, PagerError, PageResult, split_target, truncate
from bot.pagers.http import HttpAnswer, RetryPolicy, post_json

EventAction = Literal["trigger", "acknowledge", "resolve"]

SUMMARY_LIMIT = 1024
SOURCE = "firebreak"
CLIENT = "Firebreak"

SEVERITY_MAP: Mapping[str, str] = {"P0": "critical", "P1": "error", "P2": "warning", "P3": "info"}


def routing_key_variable(name: str) -> str:
    """The environment variable that holds the routing key of ``pagerduty:<name>``."""
    return "PAGERDUTY_ROUTING_KEY_" + name.upper().replace("-", "_")


def build_summary(request: PageRequest) -> str:
    summary = f"[{request.incident_ref}][{request.severity}] {request.incident_title}"
    return truncate(summary, SUMMARY_LIMIT)


def build_event(routing_key: str, action: EventAction, request: PageRequest) -> dict[str, Any]:
    """The Events v2 body for ``action`` on the incident of ``request``."""
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": request.dedup_key,
    }
    if action != "trigger":
        return event
    details: dict[str, Any] = {
        "incident": request.incident_ref,
        "title": request.incident_title,
        "severity": request.severity,
    }
    if request.manual:
        details["page"] = "manual"
        if request.paged_by:
            details["paged_by"] = request.paged_by
    else:
        details["escalation_level"] = request.level + 1
        details["repeat"] = request.repeat + 1
    if request.message:
        details["message"] = request.message
    channel_url = request.channel_url
    if channel_url:
        details["incident_channel"] = channel_url
    event["payload"] = {
        "summary": build_summary(request),
        "source": SOURCE,
        "severity": SEVERITY_MAP[request.severity],
        "timestamp": request.timestamp.isoformat(timespec="milliseconds"),
        "class": "incident",
        "custom_details": details,
    }
    event["client"] = CLIENT
    if channel_url:
        event["client_url"] = channel_url
        event["links"] = [{"href": channel_url, "text": f"{request.incident_ref} incident channel"}]
    return event


def _error_message(answer: HttpAnswer) -> str:
    message = answer.get("message") or ""
    errors = answer.get("errors")
    parts = [str(message)] if message else []
    if isinstance(errors, list) and errors:
        parts.append("; ".join(str(e) for e in errors))
    if not parts and isinstance(answer.body, str) and answer.body:
        parts.append(truncate(answer.body, 300))
    return ": ".join(parts) or "no message"


class PagerDutyPager:
    """Triggers, acknowledges and resolves PagerDuty alerts through Events API v2."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        events_url: str,
        routing_keys: Mapping[str, SecretStr],
        *,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._session = session
        self._events_url = events_url
        self._routing_keys = {name.lower(): key for name, key in routing_keys.items()}
        self._retry = retry or RetryPolicy()

    def _routing_key(self, target: str) -> str:
        kind, name = split_target(target)
        if kind != "pagerduty":
            raise PagerError(f"{target!r} is not a pagerduty: target", transient=False, target=target)
        for candidate in (name.lower(), name.lower().replace("-", "_")):
            key = self._routing_keys.get(candidate)
            if key is not None:
                return key.get_secret_value()
        raise PagerError(
            f"no PagerDuty routing key for {target!r}: set {routing_key_variable(name)}",
            transient=False,
            target=target,
        )

    async def _send(self, target: str, action: EventAction, request: PageRequest) -> HttpAnswer:
        body = build_event(self._routing_key(target), action, request)
        try:
            answer = await post_json(
                self._session, self._events_url, body, provider="PagerDuty", policy=self._retry
            )
        except PagerError as exc:
            exc.target = target
            raise
        if answer.status == 202:
            return answer
        kind = "refused the event" if answer.status == 400 else f"answered HTTP {answer.status}"
        message = _error_message(answer)
        if key := body["routing_key"]:
            message = message.replace(key, "[redacted]")  # a refusal may quote the key it was sent
        raise PagerError(
            f"PagerDuty {kind} for {target!r} ({action}): {message}",
            transient=False,
            target=target,
        )

    async def page(self, target: str, request: PageRequest) -> PageResult:
        answer = await self._send(target, "trigger", request)
        dedup_key = str(answer.get("dedup_key") or request.dedup_key)
        return PageResult(
            target=target,
            delivered=True,
            detail=str(answer.get("message") or "Event processed"),
            provider_ids={"dedup_key": dedup_key},
        )

    async def acknowledge(self, target: str, request: PageRequest) -> None:
        await self._send(target, "acknowledge", request)

    async def resolve(self, target: str, request: PageRequest) -> None:
        await self._send(target, "resolve", request)
