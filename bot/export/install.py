"""Wiring of the export concern: the automatic follow-up after a rollback, the
Slack name directory shared by exports, and the web pages."""

from __future__ import annotations

from aiohttp import web

from bot.export.names import Names, SlackNames
from bot.export.pipeline import Exporter
from bot.export.service import followup_after_rollback
from bot.export.web import add_routes
from bot.incidents import lifecycle
from bot.runtime import Runtime

NAMES = "export.names"


def names_for(rt: Runtime) -> Names:
    names = rt.extras.get(NAMES)
    if not isinstance(names, Names):
        names = SlackNames(rt.slack)
        rt.extras[NAMES] = names
    return names


def exporter_for(rt: Runtime) -> Exporter:
    return Exporter(sessions=rt.sessions, settings=rt.settings, names=names_for(rt), clock=rt.clock,
                    playbooks=rt.playbooks)


def install(rt: Runtime) -> None:
    lifecycle.subscribe(followup_after_rollback)
    names_for(rt)


def install_routes(app: web.Application, rt: Runtime) -> None:
    def token(_request: web.Request) -> str | None:
        secret = rt.settings.web_auth_token
        return secret.get_secret_value() if secret is not None else None

    add_routes(app, exporter_for=lambda _request: exporter_for(rt), token_of=token)
