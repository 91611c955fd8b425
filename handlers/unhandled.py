"""Requests no other listener took: an old button, a form or shortcut Firebreak no longer has,
a command it does not own. Slack gets its 200 (a 404 shows the person an error icon), and
whoever can be told is told, ephemerally, that nothing was done.

Registered after every other listener (Bolt tries listeners in registration order).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError

from bot.runtime import Runtime
from handlers.common import dig, ephemeral, text_field

log = logging.getLogger("firebreak.handlers")

ANY = re.compile(".*", re.DOTALL)
NO_LONGER = ("This {what} is no longer handled by Firebreak, so nothing was done. Type "
             "`/incident help` or `/rollback help` to see what Firebreak does now.")


def _modal(text: str) -> dict[str, Any]:
    return {"type": "modal", "title": {"type": "plain_text", "text": "Firebreak"},
            "close": {"type": "plain_text", "text": "Close"},
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


def register(app: AsyncApp, rt: Runtime) -> None:
    def tell(body: dict[str, Any], what: str, name: str) -> None:
        """After the ack: an ephemeral reply through the payload's response URL, if it has one."""
        url = text_field(body, "response_url") or \
            next((text_field(r, "response_url") for r in body.get("response_urls") or []), None)
        http = rt.http
        if not (url and url.startswith(("https://", "http://"))) or http is None or rt.background.saturated:
            return

        async def work() -> None:
            try:
                async with http.post(url, json={**ephemeral(NO_LONGER.format(what=what)),
                                                   "replace_original": False}) as answer:
                    await answer.read()
            except Exception as exc:  # noqa: BLE001 - a courtesy: the request was refused anyway
                log.info("could not tell the sender of %s that it is not handled: %s", name,
                         type(exc).__name__)

        rt.background.spawn(work, name=f"unhandled {name}")

    @app.action(ANY)
    async def unhandled_action(ack: AsyncAck, body: dict) -> None:
        await ack()
        action = text_field((body.get("actions") or [{}])[0], "action_id") or text_field(body, "callback_id")
        log.info("refused an interaction Firebreak does not handle: %r", (action or "")[:80])
        tell(body, "button", "action")

    @app.view(ANY)
    async def unhandled_form(ack: AsyncAck, body: dict) -> None:
        log.info("refused a form Firebreak does not handle: %r", (dig(body, "view", "callback_id") or "")[:80])
        await ack(response_action="update", view=_modal(NO_LONGER.format(what="form")))

    @app.view_closed(ANY)
    async def unhandled_form_closed(ack: AsyncAck) -> None:
        await ack()

    @app.shortcut(ANY)
    async def unhandled_shortcut(ack: AsyncAck, body: dict, client) -> None:
        await ack()
        log.info("refused a shortcut Firebreak does not handle: %r", (text_field(body, "callback_id") or "")[:80])
        if body.get("type") == "message_action":
            tell(body, "shortcut", "shortcut")
            return
        trigger = text_field(body, "trigger_id")
        if not trigger or rt.background.saturated:
            return

        async def work() -> None:  # a global shortcut has no channel: the person sees a small modal
            try:
                await client.views_open(trigger_id=trigger, view=_modal(NO_LONGER.format(what="shortcut")))
            except SlackApiError as exc:
                log.info("could not show that a shortcut is not handled: %s", exc.response.get("error"))

        rt.background.spawn(work, name="unhandled shortcut")

    @app.options(ANY)
    async def unhandled_options(ack: AsyncAck) -> None:
        await ack(options=[])

    @app.command(ANY)
    async def unhandled_command(ack: AsyncAck, body: dict) -> None:
        command = (text_field(body, "command") or "this command")[:40]
        await ack(response_type="ephemeral",
                  text=f"Firebreak does not handle `{command}`, so nothing was done. Its commands are "
                       "`/incident` and `/rollback`.")
