"""Block Kit for paging messages (pure functions, no I/O).

The **Acknowledge** button has ``action_id = ActionId.PAGE_ACK`` and a compact
JSON ``value``: ``{"incident": 12, "level": 0, "repeat": 0}`` (0-based level
and repeat, as in :class:`~bot.pagers.base.PageRequest`). Listeners read it
back with :func:`parse_page_ack_value`.

Limits (PROVIDERS.md, Slack): 50 blocks per message, header 150 characters,
section text 3,000, button text 75, button value 2,000, action_id/block_id 255.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.pagers.base import PageRequest, truncate
from bot.slack.ids import ActionId
from bot.text import shown

HEADER_LIMIT = 150
SECTION_TEXT_LIMIT = 3000
CONTEXT_TEXT_LIMIT = 3000
BUTTON_TEXT_LIMIT = 75
BUTTON_VALUE_LIMIT = 2000
FALLBACK_TEXT_LIMIT = 3000
MAX_BLOCKS = 50

PAGE_ACTIONS_BLOCK_ID = "page_actions"

_BARE_NUMBER = re.compile(r"^(?:INC-)?([0-9]+)$", re.IGNORECASE)

_SEVERITY_EMOJI = {"P0": ":red_circle:", "P1": ":large_orange_circle:", "P2": ":large_yellow_circle:", "P3": ":white_circle:"}


def channel_reference(request: PageRequest) -> str | None:
    """``<#C123>`` for a known channel id, else a link to the channel, else None."""
    if request.channel_id:
        return f"<#{request.channel_id}>"
    if request.channel_link:
        return f"<{request.channel_link}|incident channel>"
    return None


def _level_text(request: PageRequest) -> str:
    text = f"level {request.level + 1}"
    if request.repeat:
        text += f" (repeat {request.repeat})"  # as the channel line and the timeline count
    return text


def _paged_by(request: PageRequest) -> str:
    who = request.paged_by
    if not who:
        return ""
    return f" from <@{who}>" if _is_user_id(who) else f" from {shown(who)}"


def _is_user_id(value: str) -> bool:
    return value[:1] in ("U", "W") and value.isalnum()


def page_reason(request: PageRequest) -> str:
    """Why this page was sent: ``escalation level 2 (repeat 1)`` or ``manual page from <@U1>``."""
    if request.manual:
        return "manual page" + _paged_by(request)
    return f"escalation {_level_text(request)}"


def page_fallback_text(request: PageRequest) -> str:
    """Notification text (shown in push notifications and where blocks cannot render).

    Slack parses this text as mrkdwn too, so the title is shown as in the blocks.
    """
    prefix = f"Page: {request.incident_ref} {request.severity} ({page_reason(request)}): "
    return prefix + _fit(request.incident_title, FALLBACK_TEXT_LIMIT - len(prefix))


@dataclass(frozen=True, slots=True)
class PageAckValue:
    incident_number: int
    level: int = 0
    repeat: int = 0


def page_ack_value(request: PageRequest) -> str:
    """The Acknowledge button's value: ``{"incident":12,"level":0,"repeat":0}``."""
    return json.dumps(
        {"incident": request.incident_number, "level": request.level, "repeat": request.repeat},
        separators=(",", ":"),
    )


def parse_page_ack_value(value: str) -> PageAckValue:
    """Read an Acknowledge button's value back; ``ValueError`` if it is not one of ours.

    Accepts the JSON form and, leniently, a bare ``12`` or ``INC-12``.
    """
    problem = ValueError(f"not a page acknowledgement value: {value[:80]!r}")
    bare = _BARE_NUMBER.match(value.strip())
    if bare:
        data: Any = {"incident": int(bare.group(1))}
    else:
        try:
            data = json.loads(value)
        except json.JSONDecodeError:
            raise problem from None
    if not isinstance(data, dict):
        raise problem
    fields = (data.get("incident"), data.get("level", 0), data.get("repeat", 0))
    if not all(type(v) is int for v in fields):
        raise problem
    number, level, repeat = fields
    if number < 1 or level < 0 or repeat < 0:
        raise problem
    return PageAckValue(number, level, repeat)


def _header(request: PageRequest) -> dict[str, Any]:
    text = f":rotating_light: {request.incident_ref} {request.severity}: {shown(request.incident_title)}"
    return {"type": "header", "text": {"type": "plain_text", "text": truncate(text, HEADER_LIMIT), "emoji": True}}


def _summary_section(request: PageRequest) -> dict[str, Any]:
    emoji = _SEVERITY_EMOJI.get(request.severity, "")
    fixed = [
        f"{emoji} *{request.severity}* · {page_reason(request)}",
    ]
    channel = channel_reference(request)
    if channel:
        fixed.append(f"Incident channel: {channel}")
    # Showing can change the title's length, so truncate it to what is left after the fixed lines.
    title_prefix = f"*{request.incident_ref}* — "
    room = SECTION_TEXT_LIMIT - len("\n".join(fixed)) - len(title_prefix) - 1
    title = _fit(request.incident_title, room)
    text = "\n".join([title_prefix + title, *fixed])
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _fit(text: str, limit: int, render: Callable[[str], str] = shown) -> str:
    """``render(text)``, or of its longest prefix marked with "…", within ``limit`` characters.

    Rendering (showing, quoting) can change the text's length, so the cut is made on the
    raw text and measured on the rendered form: an ``&lt;`` is never cut in half.
    """
    rendered = render(text)
    if len(rendered) <= limit:
        return rendered
    low, high = 0, len(text)
    while low < high:  # longest raw prefix whose rendered form fits
        mid = (low + high + 1) // 2
        if len(render(text[:mid].rstrip() + "…")) <= limit:
            low = mid
        else:
            high = mid - 1
    return render(text[:low].rstrip() + "…")


def _quote(text: str) -> str:
    return "> " + shown(text).replace("\n", "\n> ")


def _message_section(message: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _fit(message, SECTION_TEXT_LIMIT, _quote)}}


def _context(request: PageRequest) -> dict[str, Any]:
    epoch = int(request.timestamp.timestamp())
    fallback = request.timestamp.strftime("%Y-%m-%d %H:%M UTC")
    text = f"Paged by Firebreak <!date^{epoch}^{{date_short_pretty}} {{time}}|{fallback}>"
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _ack_actions(request: PageRequest) -> dict[str, Any]:
    return {
        "type": "actions",
        "block_id": PAGE_ACTIONS_BLOCK_ID,
        "elements": [
            {
                "type": "button",
                "action_id": str(ActionId.PAGE_ACK),
                "text": {"type": "plain_text", "text": "Acknowledge", "emoji": True},
                "style": "primary",
                "value": page_ack_value(request),
            }
        ],
    }


def build_page_blocks(request: PageRequest, *, with_button: bool = True) -> list[dict[str, Any]]:
    """The blocks of a paging DM (or channel post when ``with_button`` is False)."""
    blocks: list[dict[str, Any]] = [_header(request), _summary_section(request)]
    if request.message:
        blocks.append(_message_section(request.message))
    blocks.append(_context(request))
    if with_button:
        blocks.append(_ack_actions(request))
    return blocks[:MAX_BLOCKS]


def build_page_acknowledged_blocks(request: PageRequest, acknowledged_by: str) -> list[dict[str, Any]]:
    """The same page with the button replaced by who acknowledged (for ``chat.update``).

    ``acknowledged_by`` is a Slack user id (rendered as a mention) or a name.
    """
    who = f"<@{acknowledged_by}>" if _is_user_id(acknowledged_by) else shown(acknowledged_by)
    blocks = build_page_blocks(request, with_button=False)
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(f":white_check_mark: Acknowledged by {who}", CONTEXT_TEXT_LIMIT)}]})
    return blocks
