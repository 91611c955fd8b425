"""The Slack app Firebreak is: its slash commands, the events it acts on, the bot scopes.

This is the one list. ``slack-manifest.yml`` and ``firebreak slack manifest`` are made
from it, and the README's scope list must equal it; tests/test_slack_manifest.py checks
that it names exactly the Web API methods the code calls, the events it listens to and
the commands it registers, so that a scope cannot be missing (Slack answers
``missing_scope``) or asked for without a use.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from typing import Any

import yaml

EVENTS_PATH = "/slack/events"  # commands, interactivity and events all arrive here over HTTP


@dataclass(frozen=True)
class SlashCommand:
    command: str
    description: str
    usage_hint: str


SLASH_COMMANDS = (
    SlashCommand("/incident", "Open and run an incident: its channel, card, paging, timeline and post-mortem",
                 "open P1 checkout is failing service:api | ack | status <text> | resolve | help"),
    SlashCommand("/rollback", "Roll a service back to its last good deploy, once an owner confirms",
                 "<service> [to <deploy-id>] [reason] | status | list | help"),
)
COMMAND_SCOPE = "commands"

# Every Web API method Firebreak calls, with the bot scopes Slack's method reference asks for.
METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "auth.test": (),
    "bookmarks.add": ("bookmarks:write",),
    "bookmarks.list": ("bookmarks:read",),  # a retried set-up looks for the runbook bookmark
    "chat.postEphemeral": ("chat:write",),
    # chat:write.public: pages to `channel:` targets and ANNOUNCE_CHANNEL, without joining first
    "chat.postMessage": ("chat:write", "chat:write.public"),
    "chat.update": ("chat:write",),
    "conversations.create": ("channels:manage",),
    # incident channels, private `channel:` targets, and the DMs pages are sent in
    "conversations.history": ("channels:history", "groups:history", "im:history"),
    "conversations.info": ("channels:read",),
    "conversations.invite": ("channels:manage",),
    "conversations.join": ("channels:join",),
    "conversations.list": ("channels:read",),
    "conversations.open": ("im:write",),
    "conversations.replies": ("channels:history", "groups:history", "im:history"),
    "conversations.setTopic": ("channels:manage",),
    "files.completeUploadExternal": ("files:write",),
    "files.getUploadURLExternal": ("files:write",),
    "pins.add": ("pins:write",),
    "usergroups.users.list": ("usergroups:read",),
    "users.info": ("users:read",),
    "views.open": (),
}

# The events Firebreak acts on (a pinned or :pushpin:-ed message joins the timeline).
EVENT_SCOPES: dict[str, tuple[str, ...]] = {
    "pin_added": ("pins:read",),
    "reaction_added": ("reactions:read",),
}

BOT_SCOPES: tuple[str, ...] = tuple(sorted({COMMAND_SCOPE, *chain(*METHOD_SCOPES.values(), *EVENT_SCOPES.values())}))
BOT_EVENTS: tuple[str, ...] = tuple(sorted(EVENT_SCOPES))

PLACEHOLDER_URL = "https://firebreak.example.com"  # slack-manifest.yml: replace with your host

HEADER = """\
# Firebreak's Slack app. Create it at https://api.slack.com/apps: "Create New App" →
# "From a manifest", pick the workspace, paste this. Made by
#   {command}
# (from bot/slack/manifest.py: do not edit by hand).
"""


def manifest(url: str | None, *, socket_mode: bool = False) -> dict[str, Any]:
    """Slack's app manifest; over HTTP, Slack sends everything to ``<url>/slack/events``."""
    if not socket_mode and not url:
        raise ValueError("an app that does not use Socket Mode needs the URL Slack sends requests to")
    endpoint = None if socket_mode else request_url(url or "")
    commands = []
    for command in SLASH_COMMANDS:
        entry: dict[str, Any] = {"command": command.command}
        if endpoint:
            entry["url"] = endpoint
        entry.update(description=command.description, usage_hint=command.usage_hint,
                     should_escape=True)  # mentions arrive as <@U…>, channels as <#C…>
        commands.append(entry)
    events: dict[str, Any] = {"request_url": endpoint} if endpoint else {}
    events["bot_events"] = list(BOT_EVENTS)
    interactivity: dict[str, Any] = {"is_enabled": True}
    if endpoint:
        interactivity["request_url"] = endpoint
    return {
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {
            "name": "Firebreak",
            "description": "Incidents, paging and safe rollbacks, from Slack",
            "background_color": "#9c2a12",
        },
        "features": {
            # Pages arrive as DMs from the bot; nobody needs to write to it there.
            "app_home": {"home_tab_enabled": False, "messages_tab_enabled": True,
                         "messages_tab_read_only_enabled": True},
            "bot_user": {"display_name": "firebreak", "always_online": True},
            "slash_commands": commands,
        },
        "oauth_config": {"scopes": {"bot": list(BOT_SCOPES)}},
        "settings": {
            "event_subscriptions": events,
            "interactivity": interactivity,
            "org_deploy_enabled": False,
            "socket_mode_enabled": socket_mode,
            "token_rotation_enabled": False,
        },
    }


def request_url(url: str) -> str:
    """``https://host[/prefix]`` → ``https://host[/prefix]/slack/events`` (Slack wants https)."""
    base = url.strip().rstrip("/")
    if not base.startswith("https://") or len(base) <= len("https://"):
        raise ValueError(f"Slack sends requests only to https:// URLs, not {url!r}")
    return base if base.endswith(EVENTS_PATH) else base + EVENTS_PATH


def manifest_yaml(url: str | None, *, socket_mode: bool = False) -> str:
    body = yaml.safe_dump(manifest(url, socket_mode=socket_mode), sort_keys=False, allow_unicode=True, width=100)
    command = "firebreak slack manifest" + (f" --url {url}" if url else "") + (" --socket-mode" if socket_mode else "")
    return HEADER.format(command=command) + body
