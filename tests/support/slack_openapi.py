"""Checks Web API requests against Slack's own OpenAPI 2.0 spec (2021), as a SlackEmulator validator.

    validator = slack_openapi_validator()
    emu = SlackEmulator(validator=validator)

For every call: the method must be in the spec (or in :data:`NON_SPEC_METHODS`), every required
parameter must be present (``token`` excepted: slack_sdk sends it as a header), and no parameter
may be sent that the spec does not list (or that :data:`NEWER_PARAMS` does not allow).

Run ``python -m tests.support.slack_openapi`` to print the allowances.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from tests.support.specs import spec_path

SPEC_PARTS = ("slack", "slack_web_openapi_v2.json")

# slack_sdk sends the token in the Authorization header; the spec still lists it as a parameter.
# Bolt's per-request client carries the workspace id and slack_sdk adds ``team_id`` to
# every call (Slack accepts it on every method since org-wide apps, after the 2021 spec).
IGNORED_PARAMS = frozenset({"token", "team_id"})


@dataclass(frozen=True)
class MethodParams:
    required: frozenset[str]
    optional: frozenset[str]

    @property
    def allowed(self) -> frozenset[str]:
        return self.required | self.optional


# Methods Slack added after the 2021 spec, described by hand from docs.slack.dev.
NON_SPEC_METHODS: dict[str, MethodParams] = {
    # files.upload v2 flow (2024), what slack_sdk's files_upload_v2 calls.
    "files.getUploadURLExternal": MethodParams(
        frozenset({"filename", "length"}), frozenset({"alt_txt", "snippet_type"})
    ),
    "files.completeUploadExternal": MethodParams(
        frozenset({"files"}), frozenset({"channel_id", "channels", "initial_comment", "thread_ts", "blocks"})
    ),
    # Channel bookmarks (2022).
    "bookmarks.add": MethodParams(
        frozenset({"channel_id", "title", "type"}),
        frozenset({"link", "emoji", "entity_id", "parent_id", "access_level"}),
    ),
    "bookmarks.list": MethodParams(frozenset({"channel_id"}), frozenset()),
    "bookmarks.edit": MethodParams(frozenset({"channel_id", "bookmark_id"}), frozenset({"title", "link", "emoji"})),
    "bookmarks.remove": MethodParams(frozenset({"channel_id", "bookmark_id"}), frozenset({"quote_id"})),
    # Socket Mode (2021): a WebSocket URL for the app-level token.
    "apps.connections.open": MethodParams(frozenset(), frozenset()),
}

# Parameters Slack added to spec'd methods after 2021 (all documented on docs.slack.dev today).
NEWER_PARAMS: dict[str, frozenset[str]] = {
    # message metadata (2022), markdown_text (2025), file_ids on update (2023)
    "chat.postMessage": frozenset({"metadata", "markdown_text"}),
    "chat.postEphemeral": frozenset({"markdown_text"}),
    "chat.update": frozenset({"metadata", "markdown_text", "file_ids", "reply_broadcast"}),
    # org-wide apps pass the workspace explicitly
    "conversations.create": frozenset({"team_id"}),
    "conversations.list": frozenset({"team_id"}),
    "users.list": frozenset({"team_id"}),
    "usergroups.list": frozenset({"team_id"}),
    "usergroups.users.list": frozenset({"team_id"}),
    # invite the valid users even when some are not (2023)
    "conversations.invite": frozenset({"force"}),
    "conversations.history": frozenset({"include_all_metadata"}),
    "conversations.replies": frozenset({"include_all_metadata"}),
    # workflow-step interactivity instead of a trigger id
    "views.open": frozenset({"interactivity_pointer"}),
    "views.push": frozenset({"interactivity_pointer"}),
}


class SlackSpecViolation(AssertionError):
    """A request that Slack's published API description does not allow."""


class SlackOpenAPIValidator:
    """Callable ``(method, params)`` that raises :class:`SlackSpecViolation` on a request the spec refuses."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.methods: dict[str, MethodParams] = {}
        for path, operations in spec["paths"].items():
            required: set[str] = set()
            optional: set[str] = set()
            for operation in operations.values():
                for parameter in operation.get("parameters", []):
                    name = parameter["name"]
                    if name in IGNORED_PARAMS:
                        continue
                    (required if parameter.get("required") else optional).add(name)
            self.methods[path.lstrip("/")] = MethodParams(frozenset(required), frozenset(optional - required))

    @classmethod
    def from_file(cls, path: Path | None = None) -> SlackOpenAPIValidator:
        return cls(json.loads((path or spec_path(*SPEC_PARTS)).read_text()))

    def params_for(self, method: str) -> MethodParams:
        if method in self.methods:
            known = self.methods[method]
            return MethodParams(known.required, known.optional | NEWER_PARAMS.get(method, frozenset()))
        if method in NON_SPEC_METHODS:
            return NON_SPEC_METHODS[method]
        raise SlackSpecViolation(
            f"{method} is not in Slack's OpenAPI spec nor in the allowed non-spec methods "
            f"({', '.join(sorted(NON_SPEC_METHODS))})"
        )

    def __call__(self, method: str, params: dict[str, Any]) -> None:
        expected = self.params_for(method)
        sent = {name for name, value in params.items() if value is not None} - IGNORED_PARAMS
        missing = sorted(expected.required - sent)
        unknown = sorted(sent - expected.allowed)
        problems = []
        if missing:
            problems.append(f"missing required parameter(s) {', '.join(missing)}")
        if unknown:
            problems.append(f"parameter(s) not in the spec: {', '.join(unknown)}")
        if problems:
            raise SlackSpecViolation(f"{method}: {'; '.join(problems)}")

    def response_schema(self, method: str, *, ok: bool = True) -> dict[str, Any] | None:
        """The spec's JSON schema of a success (or error) answer, self-contained for jsonschema."""
        operations = self.spec["paths"].get(f"/{method}")
        if not operations:
            return None
        responses = next(iter(operations.values())).get("responses", {})
        schema = (responses.get("200" if ok else "default") or {}).get("schema")
        if schema is None:
            return None
        return {**schema, "definitions": self.spec["definitions"]}


@cache
def slack_openapi_validator() -> SlackOpenAPIValidator:
    return SlackOpenAPIValidator.from_file()


def describe_allowances() -> str:
    lines = ["Methods allowed although absent from Slack's 2021 OpenAPI spec:"]
    lines += [f"  {name}" for name in sorted(NON_SPEC_METHODS)]
    lines.append("Parameters allowed although absent from the spec:")
    lines += [f"  {name}: {', '.join(sorted(params))}" for name, params in sorted(NEWER_PARAMS.items())]
    return "\n".join(lines)


if __name__ == "__main__":
    print(describe_allowances())
