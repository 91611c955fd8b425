"""Page targets as written in playbooks (SPEC §5).

==========================================  ======================================
written                                     meaning
==========================================  ======================================
``user:U024BE7LH``                          a Slack user (DM with Acknowledge)
``group:S0PLATFORM``                        every member of a Slack user group
``oncall:backend[:primary|:secondary]``     whoever is on call in that rotation
``pagerduty:default``                       PagerDuty, key ``PAGERDUTY_ROUTING_KEY_DEFAULT``
``opsgenie:<team>``                         an Opsgenie team
``channel:C0TRIAGE``                        a post in that channel
==========================================  ======================================

``Target.parse`` turns the text into a typed value and ``str(target)`` gives the
canonical text back (``oncall:backend:primary`` is written ``oncall:backend``;
PagerDuty names are lower-cased because routing keys are looked up that way).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema


class TargetKind(StrEnum):
    USER = "user"
    GROUP = "group"
    ONCALL = "oncall"
    PAGERDUTY = "pagerduty"
    OPSGENIE = "opsgenie"
    CHANNEL = "channel"


class OnCallRole(StrEnum):
    PRIMARY = "primary"
    SECONDARY = "secondary"


_KINDS = ", ".join(kind.value for kind in TargetKind)
_SLACK_ID = {
    TargetKind.USER: (re.compile(r"^[UW][A-Z0-9]{2,}$"), "a Slack user id like U024BE7LH"),
    TargetKind.GROUP: (re.compile(r"^S[A-Z0-9]{2,}$"), "a Slack user group id like S0PLATFORM"),
    TargetKind.CHANNEL: (re.compile(r"^[CG][A-Z0-9]{2,}$"), "a Slack channel id like C0TRIAGE"),
}
ROTATION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_PAGERDUTY_NAME = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass(frozen=True, slots=True)
class Target:
    """One page target.

    ``value`` is the Slack id (user, group, channel), the rotation name (oncall),
    the routing-key name (pagerduty) or the team (opsgenie). ``role`` is set only
    for ``oncall`` targets.
    """

    kind: TargetKind
    value: str
    role: OnCallRole | None = None

    @classmethod
    def parse(cls, text: str) -> Target:
        """Parse ``kind:value``; raise ``ValueError`` saying what is wrong."""
        if not isinstance(text, str):
            raise ValueError(f"a target is text like 'user:U024BE7LH' (got {text!r})")
        kind_text, sep, rest = text.strip().partition(":")
        if not sep:
            raise ValueError(
                f"a target is written kind:value with kind one of {_KINDS} (got {text!r})"
            )
        try:
            kind = TargetKind(kind_text.lower())
        except ValueError:
            raise ValueError(
                f"unknown target kind {kind_text!r} in {text!r}: use one of {_KINDS}"
            ) from None
        if kind is TargetKind.ONCALL:
            return cls._parse_oncall(text, rest)
        if not rest:
            raise ValueError(f"{text!r}: nothing after '{kind}:'")
        if kind in _SLACK_ID:
            pattern, expected = _SLACK_ID[kind]
            if not pattern.match(rest):
                raise ValueError(f"{text!r}: '{kind}:' expects {expected} (got {rest!r})")
            return cls(kind, rest)
        if kind is TargetKind.PAGERDUTY:
            if not _PAGERDUTY_NAME.match(rest):
                raise ValueError(
                    f"{text!r}: a PagerDuty name uses letters, digits and '_' only, as in "
                    f"PAGERDUTY_ROUTING_KEY_<NAME>"
                )
            return cls(kind, rest.lower())
        return cls(kind, rest.strip())  # opsgenie team: free text

    @classmethod
    def _parse_oncall(cls, text: str, rest: str) -> Target:
        rotation, sep, role_text = rest.partition(":")
        if not ROTATION_NAME.match(rotation):
            raise ValueError(f"{text!r}: write oncall:<rotation>[:primary|secondary]")
        if not sep:
            return cls(TargetKind.ONCALL, rotation, OnCallRole.PRIMARY)
        try:
            role = OnCallRole(role_text)
        except ValueError:
            raise ValueError(
                f"{text!r}: on-call role must be primary or secondary (got {role_text!r})"
            ) from None
        return cls(TargetKind.ONCALL, rotation, role)

    def __str__(self) -> str:
        if self.kind is TargetKind.ONCALL and self.role is OnCallRole.SECONDARY:
            return f"oncall:{self.value}:secondary"
        return f"{self.kind}:{self.value}"

    @property
    def is_person(self) -> bool:
        """True when the target is paged person by person through a Slack DM."""
        return self.kind in (TargetKind.USER, TargetKind.GROUP, TargetKind.ONCALL)

    # pydantic: validate from text (or an existing Target), serialize as text.
    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            lambda value: value if isinstance(value, Target) else cls.parse(value),
            serialization=core_schema.plain_serializer_function_ser_schema(str),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "pattern": rf"^({'|'.join(TargetKind)}):.+$"}


def require_kinds(*kinds: TargetKind) -> Callable[[Target], Target]:
    """An after-validator accepting only targets of the given kinds."""
    allowed = " or ".join(f"'{kind}:'" for kind in kinds)

    def check(target: Target) -> Target:
        if target.kind not in kinds:
            raise ValueError(f"must be a {allowed} target (got '{target}')")
        return target

    return check
