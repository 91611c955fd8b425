"""What every pager shares: the page request, its result, the Pager protocol and errors.

A *pager* delivers one page to one target (SPEC §5 targets). It does not decide
when to page, whom to page next or whether a page was already sent: that is the
escalation engine's job. Targets reach a pager already resolved: ``oncall:``
targets are turned into ``user:`` targets by the escalation engine first.

Idempotency: PagerDuty's ``dedup_key`` is the incident's
:attr:`PageRequest.dedup_key` (``firebreak-INC-12``; PagerDuty de-duplicates per
service, i.e. per routing key) and Opsgenie's ``alias`` that key plus the team
(Opsgenie de-duplicates open alerts by alias across the account, and a
de-duplicated request adds no responder), so repeating a page to those
providers never opens a second incident or alert there. Slack has no such key:
a Slack page carries :attr:`PageRequest.page_key` in its message metadata, and
when the caller says the page may have been sent already
(:attr:`PageRequest.maybe_sent`) the Slack pagers look for it before posting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol, get_args, runtime_checkable

from bot.clock import utc
from bot.playbooks.models import Severity

TargetKind = Literal["user", "group", "channel", "pagerduty", "opsgenie"]
TARGET_KINDS: tuple[str, ...] = get_args(TargetKind)

DEDUP_KEY_PREFIX = "firebreak-"


def incident_ref(number: int) -> str:
    """The human reference of an incident: ``INC-12``."""
    return f"INC-{number}"


def incident_dedup_key(number: int) -> str:
    """The provider-side idempotency key of an incident: ``firebreak-INC-12``.

    Used as PagerDuty's ``dedup_key`` and Opsgenie's ``alias``.
    """
    return f"{DEDUP_KEY_PREFIX}{incident_ref(number)}"


class PagerError(Exception):
    """A page, acknowledgement or resolution could not be delivered.

    ``transient`` is True when trying again later may succeed (rate limits,
    server errors, timeouts, dropped connections) and False when it cannot
    (bad configuration, an unknown user or channel, a request the provider
    refused). The message never contains a secret.
    """

    def __init__(self, message: str, *, transient: bool, target: str | None = None,
                 retry_after: float | None = None, defer: bool = False) -> None:
        super().__init__(message)
        self.transient = transient
        self.target = target
        self.retry_after = retry_after
        """Seconds the provider asked us to wait (``Retry-After``), when it said."""
        self.defer = defer
        """The page was not sent and should be tried again later (after ``retry_after``),
        rather than reported as failed: set on a 429 whose wait is too long to be
        waited out in place, and on transient Slack failures (which are retried only
        after looking for the page, never blindly)."""

    @property
    def detail(self) -> str:
        return str(self)


@dataclass(frozen=True, slots=True)
class PageRequest:
    """One page about one incident, the same whichever target receives it.

    ``level`` is the 0-based index into the severity's escalation list and
    ``repeat`` the 0-based repetition of that level; messages show both 1-based.
    """

    incident_number: int
    incident_title: str
    severity: Severity  # "P1" is accepted and stored as Severity.P1
    timestamp: datetime
    level: int = 0
    repeat: int = 0
    message: str | None = None
    channel_id: str | None = None
    channel_link: str | None = None
    actor: str | None = None
    """Who acknowledged or resolved (used by ``acknowledge``/``resolve``), a Slack id or name."""
    manual: bool = False
    """A page sent by ``/incident page`` rather than by an escalation level."""
    paged_by: str | None = None
    """Who sent a manual page (a Slack user id)."""
    page_key: str | None = None
    """The idempotency key of this page to this recipient (Slack message metadata)."""
    maybe_sent: bool = False
    """An earlier try of this very page may have been delivered: look for it before sending."""

    def __post_init__(self) -> None:
        if self.incident_number < 1:
            raise ValueError(f"incident_number must be positive, got {self.incident_number}")
        try:
            object.__setattr__(self, "severity", Severity(self.severity))
        except ValueError:
            raise ValueError(f"severity must be one of P0, P1, P2, P3, got {self.severity!r}") from None
        if self.level < 0 or self.repeat < 0:
            raise ValueError("level and repeat are 0-based indexes and cannot be negative")
        object.__setattr__(self, "timestamp", utc(self.timestamp))

    @property
    def incident_ref(self) -> str:
        return incident_ref(self.incident_number)

    @property
    def dedup_key(self) -> str:
        return incident_dedup_key(self.incident_number)

    @property
    def channel_url(self) -> str | None:
        """A browser link to the incident channel, when one is known."""
        if self.channel_link:
            return self.channel_link
        if self.channel_id:
            return f"https://slack.com/app_redirect?channel={self.channel_id}"
        return None


@dataclass(frozen=True, slots=True)
class PersonDelivery:
    """The outcome of paging one member of a ``group:`` target."""

    user_id: str
    delivered: bool
    detail: str = ""
    transient: bool = False
    channel_id: str | None = None
    ts: str | None = None


@dataclass(frozen=True, slots=True)
class PageResult:
    """What a pager did with a page.

    ``provider_ids`` holds what identifies the page at the provider:
    ``{"dedup_key": ...}`` (PagerDuty), ``{"alias": ..., "request_id": ...}``
    (Opsgenie), ``{"channel": ..., "ts": ...}`` (Slack). ``deliveries`` lists
    each member of a group.
    """

    target: str
    delivered: bool
    detail: str = ""
    provider_ids: Mapping[str, str] = field(default_factory=dict)
    deliveries: tuple[PersonDelivery, ...] = ()


@runtime_checkable
class Pager(Protocol):
    """Delivers pages to one kind of target."""

    async def page(self, target: str, request: PageRequest) -> PageResult:
        """Send the page; raise :class:`PagerError` when it cannot be delivered."""
        ...

    async def acknowledge(self, target: str, request: PageRequest) -> None:
        """Mirror an acknowledgement at the provider (a no-op where there is no such notion)."""
        ...

    async def resolve(self, target: str, request: PageRequest) -> None:
        """Mirror a resolution at the provider (a no-op where there is no such notion)."""
        ...


def split_target(target: str) -> tuple[str, str]:
    """``"pagerduty:default"`` → ``("pagerduty", "default")``.

    Raises a non-transient :class:`PagerError` for a malformed target, an
    unknown kind, or an unresolved ``oncall:`` target.
    """
    kind, sep, value = target.partition(":")
    kind = kind.strip().lower()
    value = value.strip()
    if kind == "oncall":
        raise PagerError(
            f"{target!r} must be resolved to a user: target by the escalation engine before paging",
            transient=False,
            target=target,
        )
    if not sep or not value:
        raise PagerError(f"malformed page target {target!r}: expected <kind>:<value>", transient=False, target=target)
    if kind not in TARGET_KINDS:
        raise PagerError(
            f"unknown page target kind {kind!r} in {target!r}: expected one of {', '.join(TARGET_KINDS)}",
            transient=False,
            target=target,
        )
    return kind, value


def pager_for(pagers: Mapping[str, Pager], target: str) -> Pager:
    """The pager that handles ``target``, from a registry built by ``build_pagers``."""
    kind, _ = split_target(target)
    try:
        return pagers[kind]
    except KeyError:
        raise PagerError(f"no pager is configured for {kind}: targets", transient=False, target=target) from None


def truncate(text: str, limit: int, ellipsis: str = "…") -> str:
    """``text`` cut to at most ``limit`` characters, marked with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    if limit <= len(ellipsis):
        return text[:limit]
    return text[: limit - len(ellipsis)].rstrip() + ellipsis
