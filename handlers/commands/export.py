"""``/incident followup`` and ``/incident export``: thin glue between Slack and ``bot.export``."""

from __future__ import annotations

import os
import tempfile
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from bot.db.engine import transaction
from bot.export import pipeline
from bot.export import service as exports
from bot.export.github import GitHubExportError
from bot.export.install import exporter_for
from bot.export.web import incident_url
from bot.incidents import service as incidents
from bot.incidents.commands import Command
from bot.runtime import Runtime
from handlers.commands.incident import EXTRA_SUBCOMMANDS
from handlers.common import Reply, ephemeral, once, slack_error

TITLES = {"md": "Markdown", "json": "JSON", "html": "HTML"}


def _delivery(body: dict[str, Any]) -> str | None:
    return f"trigger:{body['trigger_id']}" if body.get("trigger_id") else None


async def followup_command(rt: Runtime, command: Command, body: dict[str, Any]) -> Reply:
    async with transaction(rt.sessions) as session:
        await once(session, rt, _delivery(body), "followup")
        incident = await incidents.resolve_target(session=session, number=command.incident,
                                                  channel_id=body.get("channel_id"), for_update=True)
        followup = await exports.add_followup(session=session, incident=incident, text=command.text,
                                              actor=body["user_id"], owner_id=command.user,
                                              now=rt.clock.now())
    rt.worker.wake()
    owner = f" (owner <@{command.user}>)" if command.user else ""
    return ephemeral(f"Follow-up #{followup.id} added to {incident.key}{owner}: {command.text}\n"
                     "It will be listed in the post-mortem (`/incident export`).")


async def _in_channel(rt: Runtime, channel: str, call):
    """Run a Slack call for a channel, joining it first if the bot is not a member."""
    try:
        return await call()
    except SlackApiError as exc:
        if slack_error(exc) != "not_in_channel":
            raise
        await rt.slack.conversations_join(channel=channel)
        return await call()


async def export_command(rt: Runtime, command: Command, body: dict[str, Any]) -> Reply:
    async with transaction(rt.sessions) as session:
        await once(session, rt, _delivery(body), "export")
        incident = await incidents.resolve_target(session=session, number=command.incident,
                                                  channel_id=body.get("channel_id"))
    channel = incident.channel_id or body.get("channel_id")
    exporter = exporter_for(rt)
    fmt = command.format or "md"
    if fmt == "github":
        try:
            ref = await pipeline.publish_github(exporter, number=incident.number)
        except GitHubExportError as exc:
            return ephemeral(f":no_entry: {incident.key} was not exported to GitHub: {exc}")
        verb = "opened" if ref.created else "updated"
        text = f":memo: Post-mortem of {incident.key} {verb}: <{ref.url}|{ref.repo}#{ref.number}>"
        if channel:
            await _in_channel(rt, channel, lambda: rt.slack.chat_postMessage(channel=channel,
                                                                             text=text))
        return ephemeral(f"Post-mortem issue {verb}: {ref.url}")
    if not channel:
        return ephemeral(f":no_entry: {incident.key} has no channel to upload the file to; "
                         f"run `firebreak export {incident.key} --format {fmt}` instead.")
    filename = f"{incident.key}-postmortem.{pipeline.EXTENSIONS[fmt]}"
    handle, path = tempfile.mkstemp(prefix="firebreak-export-", suffix=f".{fmt}")
    try:
        with os.fdopen(handle, "wb") as out:
            await pipeline.write(exporter, number=incident.number, fmt=fmt, sink=out.write)
        await _in_channel(rt, channel, lambda: rt.slack.files_upload_v2(
            channel=channel, file=path, filename=filename,
            title=f"{incident.key} post-mortem ({TITLES[fmt]})",
            initial_comment=f":memo: Post-mortem of {incident.key} ({TITLES[fmt]}), "
                            f"exported by <@{body['user_id']}>."))
    finally:
        os.unlink(path)
    return ephemeral(f"Post-mortem of {incident.key} uploaded to <#{channel}> as `{filename}`."
                     + _web_link(rt, incident.key))


def _web_link(rt: Runtime, key: str) -> str:
    page = incident_url(rt.settings, key, "/postmortem.html")
    if page is None:
        return ""
    return (f"\n<{page}|Read the post-mortem of {key} on the web> · "
            f"<{incident_url(rt.settings, key)}|timeline and downloads>")


def register(app: AsyncApp, rt: Runtime) -> None:
    EXTRA_SUBCOMMANDS["followup"] = followup_command
    EXTRA_SUBCOMMANDS["export"] = export_command
