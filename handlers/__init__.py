"""Thin Slack listeners: parse the request, call a service in ``bot/``, render Block Kit."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.runtime import Runtime
from handlers import actions, commands, events, unhandled, views

# ``unhandled`` last: it takes whatever no listener before it did.
LISTENER_KINDS = [commands, actions, views, events, unhandled]


def register(app: AsyncApp, rt: Runtime) -> None:
    for kind in LISTENER_KINDS:
        kind.register(app, rt)
