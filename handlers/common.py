"""Small helpers shared by the listeners: replies, errors, de-duplication."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.incidents.commands import UsageError
from bot.incidents.service import IncidentError
from bot.jobs import service as jobs
from bot.runtime import Runtime
from bot.slack.client import slack_error

log = logging.getLogger("firebreak.handlers")

Reply = dict[str, Any]

OVERLOADED = (
    ":warning: Firebreak is overloaded right now, so nothing was done. Try again in a few "
    "seconds; if this is urgent, page people directly."
)

DATABASE_DOWN = (
    ":warning: Firebreak cannot reach its database right now, so nothing was changed. "
    "Try again in a minute; if this is urgent, page people directly."
)


MALFORMED = ("Firebreak could not read this request from Slack ({problem}), so nothing was done. "
             "Try again from Slack.")


class AlreadyHandled(Exception):
    """This Slack delivery (same trigger id or event id) was acted on before."""


class Malformed(Exception):
    """A request that is not shaped like Slack's (a missing or mistyped field)."""


def command_problem(body: dict[str, Any]) -> str | None:
    """Why a slash command body cannot be acted on, or None. Slack always sends these
    fields as text; anything else is a made-up or damaged request."""
    for key in ("user_id", "response_url"):
        if not isinstance(body.get(key), str) or not body[key]:
            return MALFORMED.format(problem=f"no `{key}`")
    if not body["response_url"].startswith(("https://", "http://")):
        return MALFORMED.format(problem="the response URL is not a URL")
    for key in ("text", "channel_id", "trigger_id"):
        if body.get(key) is not None and not isinstance(body[key], str):
            return MALFORMED.format(problem=f"`{key}` is not text")
    for key in ("user_id", "channel_id"):
        if body.get(key) and slack_id(body[key]) is None:
            return MALFORMED.format(problem=f"`{key}` is not a Slack id")
    return None


def clicked(body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The first action of a ``block_actions`` payload and who clicked; raise Malformed."""
    actions, user = body.get("actions"), body.get("user")
    if not isinstance(actions, list) or not actions or not isinstance(actions[0], dict):
        raise Malformed("no action")
    user_id = slack_id(dig(user, "id"))
    if user_id is None:
        raise Malformed("no user")
    return actions[0], user_id


MAX_NUMBER = 2**31 - 1  # the database's integer columns


def number_from(text: str | None) -> int | None:
    """A positive number that fits the database, from a button's value or block id."""
    digits = (text or "").strip()
    if not digits.isascii() or not digits.isdigit():
        return None
    number = int(digits)
    return number if 0 < number <= MAX_NUMBER else None


SLACK_TS = re.compile(r"\d{1,12}\.\d{1,8}")  # a message's ts: seconds.micro


SLACK_ID = re.compile(r"[A-Z0-9]{1,40}")  # U…, W…, C…, D…, G…, S…


def slack_id(value: Any) -> str | None:
    return value if isinstance(value, str) and SLACK_ID.fullmatch(value) else None


def slack_ts(value: Any) -> str | None:
    return value if isinstance(value, str) and SLACK_TS.fullmatch(value) else None


def dig(data: Any, *keys: str) -> Any:
    """``data[k1][k2]...``, or None as soon as a step is missing or not an object."""
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def text_field(data: Any, key: str) -> str | None:
    """``data[key]`` when data is an object and the value is text, else None."""
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


async def require_person(rt: Runtime, user_id: str, *, as_whom: str | None = None) -> None:
    """Refuse unless ``user_id`` is a person in the workspace (not the bot, not an unknown or
    deactivated id): the actor of a request, or ``as_whom`` ("the commander") named in it."""
    problem = await rt.people.problem(user_id)
    if problem is None:
        return
    if as_whom is None:
        raise IncidentError(f"<@{user_id}> {problem}: only people in this workspace can act on incidents "
                            "and rollbacks. Nothing was done.")
    raise IncidentError(f"<@{user_id}> {problem}, so they cannot be {as_whom}. Nothing was changed.")


async def ack_then(ack: Callable[..., Awaitable[Any]], rt: Runtime,
                   work: Callable[[], Awaitable[Any]], *, name: str,
                   refuse: Callable[[Reply], Awaitable[Any]] | None = None) -> None:
    """Answer Slack now and run ``work`` after the answer (``rt.background``).

    Bolt runs with ``process_before_response=True``: the HTTP answer leaves when the
    listener returns, so listeners return right after this. When too much work is
    waiting, nothing is started and the user is told: in the ack itself for a slash
    command (``refuse`` is None), through ``refuse`` otherwise.
    """
    if rt.background.saturated:
        log.warning("refused %s: %d requests are waiting", name, rt.background.pending)
        if refuse is None:
            await ack(response_type="ephemeral", text=OVERLOADED)
            return
        await ack()
        rt.background.spawn(lambda: refuse(ephemeral(OVERLOADED)), name=f"{name} (refused)")
        return
    await ack()
    rt.background.spawn(work, name=name)


async def ack_then_reply(ack: Callable[..., Awaitable[Any]], rt: Runtime,
                         respond: Callable[..., Awaitable[Any]],
                         action: Callable[[], Awaitable[Reply]], *, name: str) -> None:
    """For buttons: ack now, then run ``action`` (guarded) and answer the clicker.

    The response URL reaches the clicker even outside the channel's members.
    """
    url = getattr(respond, "response_url", None)
    if not (isinstance(url, str) and url.startswith(("https://", "http://"))):
        # A click on one of Firebreak's messages always comes with a response URL; without
        # one nobody could be told what happened, so nothing is done.
        log.warning("refused %s: the payload has no response URL", name)
        await ack()
        return

    async def reply(answer: Reply) -> None:
        await respond(replace_original=False, **answer)

    async def work() -> None:
        await reply(await guarded(action))

    await ack_then(ack, rt, work, name=name, refuse=reply)


def work_on_event(rt: Runtime, work: Callable[[], Awaitable[Any]], *, name: str) -> BoltResponse | None:
    """Events API: run ``work`` after the answer; when overloaded, answer 503 so that Slack
    delivers the event again later instead of it being dropped."""
    if rt.background.saturated:
        log.warning("deferred event %s: %d requests are waiting", name, rt.background.pending)
        return BoltResponse(status=503, body="overloaded; deliver again later")
    rt.background.spawn(work, name=name)
    return None


def ephemeral(text: str, **extra: Any) -> Reply:
    return {"response_type": "ephemeral", "text": text, **extra}


async def once(session: AsyncSession, rt: Runtime, key: str | None, kind: str) -> None:
    """Claim a delivery in the current transaction; raise AlreadyHandled on a repeat."""
    key = key.replace("\x00", "") if key else key
    if key and not await jobs.claim_delivery(session=session, key=key, kind=kind,
                                             now=rt.clock.now()):
        raise AlreadyHandled()


async def guarded(action: Callable[[], Awaitable[Reply]]) -> Reply:
    """Turn refusals into a helpful ephemeral reply and never let an exception reach Slack."""
    try:
        return await action()
    except UsageError as exc:
        return ephemeral(str(exc))
    except IncidentError as exc:
        return ephemeral(f":no_entry: {exc}")
    except AlreadyHandled:
        return ephemeral("That request was already handled.")
    except Malformed as exc:
        log.warning("malformed request: %s", exc)
        return ephemeral(MALFORMED.format(problem=exc))
    except SlackApiError as exc:
        error = slack_error(exc)
        log.warning("Slack refused a call: %s", error)
        return ephemeral(f":warning: Slack refused a call Firebreak made (`{error}`). "
                         "What was recorded before it stays recorded; try again, or check "
                         "Firebreak's logs.")
    except (OperationalError, DBAPIError, ConnectionError, OSError) as exc:
        log.error("database unavailable: %s", type(exc).__name__)
        return ephemeral(DATABASE_DOWN)
    except Exception:
        error_id = uuid.uuid4().hex[:8]
        log.exception("unexpected error %s", error_id)
        return ephemeral(f":warning: Something went wrong (error `{error_id}`); nothing was "
                         "half-done on purpose. Try again, or check Firebreak's logs.")
