"""The Web API methods the emulator implements, each a function of the workspace state.

A handler gets the decoded request parameters and returns the body of a successful answer
(without ``ok``) or raises :class:`SlackApiFailure` with Slack's error code.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.emulator.slack_blocks import check_message_blocks, check_message_text, check_view
from bot.emulator.slack_state import (
    Bookmark,
    EphemeralMessage,
    Pin,
    Reaction,
    SlackApiFailure,
    SlackChannel,
    SlackFile,
    SlackMessage,
    SlackUser,
    SlackView,
    Trigger,
    Workspace,
)

MAX_CHANNEL_NAME = 80
MAX_TOPIC = 250
MAX_INVITES = 1000
_CHANNEL_NAME = re.compile(r"[a-z0-9_-]+")
# conversations.list ``types`` names of our channel types
_LIST_TYPES = {"channel": "public_channel", "group": "private_channel"}
_EMOJI_NAME = re.compile(r"[a-z0-9_+'\-]+(::skin-tone-[2-6])?")

Handler = Callable[["Params"], dict[str, Any]]


@dataclass(frozen=True)
class StateChange:
    """What a change listener receives: ``kind`` such as ``message_posted``, plus JSON-ready data."""

    kind: str
    channel_id: str | None
    data: dict[str, Any] = field(default_factory=dict)


class Params:
    """Typed access to request parameters, which arrive as strings (forms) or JSON values."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def text(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        return value if isinstance(value, str) else str(value)

    def required(self, key: str, error: str = "invalid_arguments") -> str:
        value = self.text(key)
        if not value:
            raise SlackApiFailure(error, f"[ERROR] missing required field: {key}")
        return value

    def flag(self, key: str) -> bool:
        value = self.data.get(key)
        if isinstance(value, str):
            return value.lower() in ("1", "true", "yes")
        return bool(value)

    def integer(self, key: str, default: int) -> int:
        value = self.data.get(key)
        if value in (None, ""):
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise SlackApiFailure("invalid_arguments", f"[ERROR] {key} must be an integer") from None

    def csv(self, key: str) -> list[str]:
        value = self.data.get(key)
        if value is None:
            return []
        if isinstance(value, list):
            return [str(v) for v in value if str(v)]
        return [part.strip() for part in str(value).split(",") if part.strip()]


def _encode_cursor(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def _decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        kind, _, value = base64.b64decode(cursor).decode().partition(":")
        if kind == "offset":
            return int(value)
    except (ValueError, UnicodeDecodeError):
        pass
    raise SlackApiFailure("invalid_cursor")


def _paginate(items: list[Any], params: Params, *, default_limit: int = 100) -> tuple[list[Any], str]:
    limit = params.integer("limit", default_limit) or default_limit
    start = _decode_cursor(params.text("cursor"))
    page = items[start : start + limit]
    next_cursor = _encode_cursor(start + limit) if start + limit < len(items) else ""
    return page, next_cursor


def _checked_metadata(value: Any) -> dict[str, Any] | None:
    """Message metadata as Slack takes it: ``{event_type: str, event_payload: object}``.

    Slack's 2021 OpenAPI spec predates message metadata (2022); the shape is the
    documented one (docs.slack.dev/messaging/message-metadata). Anything else is
    refused with ``invalid_metadata_format`` rather than silently dropped.
    """
    if value is None or value == "":
        return None
    if (not isinstance(value, dict) or not isinstance(value.get("event_type"), str)
            or not value["event_type"].strip() or not isinstance(value.get("event_payload"), dict)):
        raise SlackApiFailure("invalid_metadata_format")
    return value


def _with_metadata(message: dict[str, Any], params: Params) -> dict[str, Any]:
    """History methods return a message's ``event_payload`` only with ``include_all_metadata``."""
    metadata = message.get("metadata")
    if metadata and not params.flag("include_all_metadata"):
        message["metadata"] = {"event_type": metadata.get("event_type")}
    return message


def _ts_bound(value: str | None, error: str) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(value)
    except ValueError:
        raise SlackApiFailure(error) from None


class SlackWebApi:
    """The method table: ``api.handler("chat.postMessage")(Params(...))``."""

    def __init__(
        self,
        workspace: Workspace,
        *,
        notify: Callable[[StateChange], None],
        base_url: Callable[[], str],
        chat_write_public: bool = False,
        strict_trigger_ids: bool = False,
        trigger_ttl: float = 3.0,
    ) -> None:
        self.ws = workspace
        self.notify = notify
        self.base_url = base_url
        self.chat_write_public = chat_write_public
        self.strict_trigger_ids = strict_trigger_ids
        self.trigger_ttl = trigger_ttl
        self.upload_tokens: dict[str, str] = {}  # upload URL token -> file id
        self._handlers: dict[str, Handler] = {
            "auth.test": self.auth_test,
            "bookmarks.add": self.bookmarks_add,
            "bookmarks.list": self.bookmarks_list,
            "chat.delete": self.chat_delete,
            "chat.getPermalink": self.chat_get_permalink,
            "chat.postEphemeral": self.chat_post_ephemeral,
            "chat.postMessage": self.chat_post_message,
            "chat.update": self.chat_update,
            "conversations.create": self.conversations_create,
            "conversations.history": self.conversations_history,
            "conversations.info": self.conversations_info,
            "conversations.invite": self.conversations_invite,
            "conversations.join": self.conversations_join,
            "conversations.list": self.conversations_list,
            "conversations.members": self.conversations_members,
            "conversations.open": self.conversations_open,
            "conversations.replies": self.conversations_replies,
            "conversations.setTopic": self.conversations_set_topic,
            "files.completeUploadExternal": self.files_complete_upload_external,
            "files.getUploadURLExternal": self.files_get_upload_url_external,
            "files.info": self.files_info,
            "pins.add": self.pins_add,
            "pins.list": self.pins_list,
            "pins.remove": self.pins_remove,
            "reactions.add": self.reactions_add,
            "reactions.get": self.reactions_get,
            "reactions.remove": self.reactions_remove,
            "usergroups.list": self.usergroups_list,
            "usergroups.users.list": self.usergroups_users_list,
            "users.info": self.users_info,
            "users.list": self.users_list,
            "users.lookupByEmail": self.users_lookup_by_email,
            "views.open": self.views_open,
            "views.push": self.views_push,
            "views.update": self.views_update,
        }

    @property
    def methods(self) -> list[str]:
        return sorted(self._handlers)

    def handler(self, method: str) -> Handler | None:
        return self._handlers.get(method)

    # -- shared checks ------------------------------------------------------------------------

    def _channel(self, channel_id: str | None) -> SlackChannel:
        """A conversation the bot can see: public channels, and private ones / DMs it is in."""
        if not channel_id:
            raise SlackApiFailure("channel_not_found")
        channel = self.ws.channels.get(channel_id)
        if channel is None:
            channel = self.ws.channel_by_name(channel_id) if channel_id.startswith("#") else None
        if channel is None or (not channel.is_public and self.ws.bot_user_id not in channel.members):
            raise SlackApiFailure("channel_not_found")
        return channel

    def _require_member(self, channel: SlackChannel) -> None:
        if self.ws.bot_user_id not in channel.members:
            raise SlackApiFailure("not_in_channel")

    def _post_target(self, ref: str | None) -> SlackChannel:
        """Where chat.* posts: a channel id or ``#name``, or a user id (the bot's DM with them)."""
        if ref and ref[0] in "UW" and ref in self.ws.users:
            channel, _ = self.ws.open_im(ref)
            return channel
        channel = self._channel(ref)
        if channel.is_archived:
            raise SlackApiFailure("is_archived")
        if self.ws.bot_user_id not in channel.members and not (channel.is_public and self.chat_write_public):
            raise SlackApiFailure("not_in_channel")
        return channel

    def _message(self, channel: SlackChannel, ts: str | None) -> SlackMessage:
        message = self.ws.find_message(channel.id, ts or "")
        if message is None:
            raise SlackApiFailure("message_not_found")
        return message

    def _user(self, user_id: str | None) -> SlackUser:
        user = self.ws.users.get(user_id or "")
        if user is None:
            raise SlackApiFailure("user_not_found")
        return user

    @staticmethod
    def _content(params: Params) -> tuple[str | None, Any, Any]:
        text, blocks, attachments = params.text("text"), params.get("blocks"), params.get("attachments")
        if isinstance(blocks, str) and blocks:
            raise SlackApiFailure("invalid_blocks_format", "[ERROR] blocks must be a JSON array [json-pointer:/blocks]")
        if isinstance(attachments, str) and attachments:
            raise SlackApiFailure("invalid_attachments")
        check_message_text(text)
        check_message_blocks(blocks if blocks != "" else None)
        return text, blocks or None, attachments or None

    def append_message(self, channel: SlackChannel, message: SlackMessage) -> SlackMessage:
        """Store a message (linking it to its thread) and tell the change listeners."""
        channel.messages.append(message)
        if message.is_reply:
            parent = self.ws.find_message(channel.id, message.thread_ts or "")
            if parent is not None:
                if parent.thread_ts is None:
                    parent.thread_ts = parent.ts
                parent.replies.append(message.ts)
        self.notify(StateChange("message_posted", channel.id, message.to_api(self.ws)))
        return message

    def system_message(self, channel: SlackChannel, subtype: str, user: str, text: str) -> None:
        self.append_message(channel, SlackMessage(channel.id, self.ws.new_ts(), user, text, subtype=subtype))

    def joined(self, channel: SlackChannel, user_id: str) -> None:
        self.system_message(channel, "channel_join", user_id, f"<@{user_id}> has joined the channel")

    def bot_message(self, channel: SlackChannel, **fields: Any) -> SlackMessage:
        return self.append_message(
            channel,
            SlackMessage(
                channel_id=channel.id,
                ts=self.ws.new_ts(),
                user=self.ws.bot_user_id,
                bot_id=self.ws.bot_id,
                app_id=self.ws.app_id,
                **fields,
            ),
        )

    def _channel_reply(self, channel: SlackChannel) -> dict[str, Any]:
        return {"channel": channel.to_api(self.ws)}

    # -- auth, users, groups ------------------------------------------------------------------

    def auth_test(self, params: Params) -> dict[str, Any]:
        return {
            "url": self.ws.team.url,
            "team": self.ws.team.name,
            "user": self.ws.bot_name,
            "team_id": self.ws.team.id,
            "user_id": self.ws.bot_user_id,
            "bot_id": self.ws.bot_id,
            "is_enterprise_install": False,
        }

    def users_info(self, params: Params) -> dict[str, Any]:
        return {"user": self._user(params.text("user")).to_api(self.ws.team.id)}

    def users_list(self, params: Params) -> dict[str, Any]:
        members = [u.to_api(self.ws.team.id) for u in self.ws.users.values()]
        page, cursor = _paginate(members, params, default_limit=1000)
        return {"members": page, "cache_ts": int(self.ws.now()), "response_metadata": {"next_cursor": cursor}}

    def users_lookup_by_email(self, params: Params) -> dict[str, Any]:
        email = (params.text("email") or "").lower()
        user = next((u for u in self.ws.users.values() if (u.email or "").lower() == email and email), None)
        if user is None:
            raise SlackApiFailure("users_not_found")
        return {"user": user.to_api(self.ws.team.id)}

    def usergroups_list(self, params: Params) -> dict[str, Any]:
        include_disabled = params.flag("include_disabled")
        groups = [g for g in self.ws.usergroups.values() if include_disabled or not g.disabled]
        include_users = params.flag("include_users")
        return {"usergroups": [g.to_api(self.ws.team.id, include_users=include_users) for g in groups]}

    def usergroups_users_list(self, params: Params) -> dict[str, Any]:
        group = self.ws.usergroups.get(params.text("usergroup") or "")
        if group is None or (group.disabled and not params.flag("include_disabled")):
            raise SlackApiFailure("no_such_subteam")
        return {"users": list(group.users)}

    # -- conversations ------------------------------------------------------------------------

    def conversations_create(self, params: Params) -> dict[str, Any]:
        name = params.text("name") or ""
        if not name:
            raise SlackApiFailure("invalid_name_required")
        if len(name) > MAX_CHANNEL_NAME:
            raise SlackApiFailure("invalid_name_maxlength")
        if not _CHANNEL_NAME.fullmatch(name):
            raise SlackApiFailure("invalid_name_specials")
        if not re.search(r"[a-z0-9]", name):
            raise SlackApiFailure("invalid_name_punctuation")
        if self.ws.channel_by_name(name) is not None:
            raise SlackApiFailure("name_taken")
        channel = self.ws.add_channel(
            SlackChannel(
                id=self.ws.ids.new("C"),
                name=name,
                is_private=params.flag("is_private"),
                creator=self.ws.bot_user_id,
                created=int(self.ws.now()),
                members=[self.ws.bot_user_id],
            )
        )
        self.notify(StateChange("channel_created", channel.id, channel.to_api(self.ws)))
        self.joined(channel, self.ws.bot_user_id)
        return self._channel_reply(channel)

    def conversations_invite(self, params: Params) -> dict[str, Any]:
        channel = self._channel(params.text("channel"))
        if channel.is_im:
            raise SlackApiFailure("method_not_supported_for_channel_type")
        if channel.is_archived:
            raise SlackApiFailure("is_archived")
        self._require_member(channel)
        user_ids = params.csv("users")
        if not user_ids:
            raise SlackApiFailure("no_user")
        if len(user_ids) > MAX_INVITES:
            raise SlackApiFailure("too_many_users")
        failures: list[dict[str, Any]] = []
        for user_id in user_ids:
            user = self.ws.users.get(user_id)
            if user_id == self.ws.bot_user_id:
                error = "cant_invite_self"
            elif user is None or user.deleted:
                error = "user_not_found"
            elif user_id in channel.members:
                error = "already_in_channel"
            else:
                continue
            failures.append({"user": user_id, "ok": False, "error": error})
        if failures and not params.flag("force"):
            extra = {"errors": failures} if len(user_ids) > 1 else {}
            raise SlackApiFailure(failures[0]["error"], **extra)
        failed = {f["user"] for f in failures}
        for user_id in user_ids:
            if user_id not in failed and user_id not in channel.members:
                channel.members.append(user_id)
                self.joined(channel, user_id)
        self.notify(StateChange("channel_members", channel.id, {"members": list(channel.members)}))
        reply = self._channel_reply(channel)
        if failures:
            reply["errors"] = failures
        return reply

    def conversations_set_topic(self, params: Params) -> dict[str, Any]:
        channel = self._channel(params.text("channel"))
        if channel.is_archived:
            raise SlackApiFailure("is_archived")
        self._require_member(channel)
        topic = params.text("topic") or ""
        if len(topic) > MAX_TOPIC:
            raise SlackApiFailure("too_long")
        channel.topic, channel.topic_set_by, channel.topic_set_at = topic, self.ws.bot_user_id, int(self.ws.now())
        self.system_message(channel, "channel_topic", self.ws.bot_user_id, f"set the channel topic: {topic}")
        self.notify(StateChange("channel_updated", channel.id, channel.to_api(self.ws)))
        return self._channel_reply(channel)

    def conversations_info(self, params: Params) -> dict[str, Any]:
        channel = self._channel(params.text("channel"))
        return {"channel": channel.to_api(self.ws, include_num_members=params.flag("include_num_members"))}

    def conversations_list(self, params: Params) -> dict[str, Any]:
        types = set(params.csv("types") or ["public_channel"])
        wanted: list[SlackChannel] = []
        for channel in self.ws.channels.values():
            kind = _LIST_TYPES.get(channel.channel_type, channel.channel_type)
            if kind not in types or (params.flag("exclude_archived") and channel.is_archived):
                continue
            if not channel.is_public and self.ws.bot_user_id not in channel.members:
                continue
            wanted.append(channel)
        page, cursor = _paginate([c.to_api(self.ws) for c in wanted], params)
        return {"channels": page, "response_metadata": {"next_cursor": cursor}}

    def conversations_members(self, params: Params) -> dict[str, Any]:
        channel = self._channel(params.text("channel"))
        page, cursor = _paginate(list(channel.members), params)
        return {"members": page, "response_metadata": {"next_cursor": cursor}}

    def conversations_join(self, params: Params) -> dict[str, Any]:
        channel = self._channel(params.text("channel"))
        if not channel.is_public:
            raise SlackApiFailure("method_not_supported_for_channel_type")
        if channel.is_archived:
            raise SlackApiFailure("is_archived")
        if self.ws.bot_user_id in channel.members:
            reply = self._channel_reply(channel)
            reply.update(warning="already_in_channel", response_metadata={"warnings": ["already_in_channel"]})
            return reply
        channel.members.append(self.ws.bot_user_id)
        self.joined(channel, self.ws.bot_user_id)
        self.notify(StateChange("channel_members", channel.id, {"members": list(channel.members)}))
        return self._channel_reply(channel)

    def conversations_open(self, params: Params) -> dict[str, Any]:
        if params.text("channel"):
            channel = self._channel(params.text("channel"))
            return {"channel": channel.to_api(self.ws) if params.flag("return_im") else {"id": channel.id}}
        user_ids = params.csv("users")
        if not user_ids:
            raise SlackApiFailure("users_list_not_supplied")
        for user_id in user_ids:
            self._user(user_id)
        if len(user_ids) == 1:
            channel, already_open = self.ws.open_im(user_ids[0])
        else:
            members = sorted({self.ws.bot_user_id, *user_ids})
            existing = next(
                (c for c in self.ws.channels.values() if c.is_mpim and sorted(c.members) == members), None
            )
            already_open = existing is not None
            channel = existing or self.ws.add_channel(
                SlackChannel(
                    id=self.ws.ids.new("G"),
                    name="mpdm-" + "--".join(self.ws.users[u].name for u in members) + "-1",
                    is_mpim=True,
                    creator=self.ws.bot_user_id,
                    members=members,
                )
            )
        if not already_open:
            self.notify(StateChange("channel_created", channel.id, channel.to_api(self.ws)))
        body: dict[str, Any] = {"channel": channel.to_api(self.ws) if params.flag("return_im") else {"id": channel.id}}
        if already_open:
            body.update(no_op=True, already_open=True)
        return body

    def _history_window(self, messages: list[SlackMessage], params: Params) -> list[SlackMessage]:
        oldest = _ts_bound(params.text("oldest"), "invalid_ts_oldest")
        latest = _ts_bound(params.text("latest"), "invalid_ts_latest")
        inclusive = params.flag("inclusive")

        def inside(message: SlackMessage) -> bool:
            ts = float(message.ts)
            if oldest is not None and (ts < oldest or (ts == oldest and not inclusive)):
                return False
            return not (latest is not None and (ts > latest or (ts == latest and not inclusive)))

        return [m for m in messages if inside(m)]

    def conversations_history(self, params: Params) -> dict[str, Any]:
        channel = self._channel(params.text("channel"))
        self._require_member(channel)
        top_level = [m for m in channel.messages if not m.deleted and (not m.is_reply or m.reply_broadcast)]
        window = list(reversed(self._history_window(top_level, params)))
        page, cursor = _paginate(window, params)
        return {
            "messages": [_with_metadata(m.to_api(self.ws), params) for m in page],
            "has_more": bool(cursor),
            "pin_count": len(channel.pins),
            "channel_actions_ts": None,
            "channel_actions_count": 0,
            "response_metadata": {"next_cursor": cursor},
        }

    def conversations_replies(self, params: Params) -> dict[str, Any]:
        channel = self._channel(params.text("channel"))
        self._require_member(channel)
        parent = self.ws.find_message(channel.id, params.text("ts") or "")
        if parent is None:
            raise SlackApiFailure("thread_not_found")
        thread = [parent] + [m for m in channel.messages if m.is_reply and m.thread_ts == parent.ts and not m.deleted]
        page, cursor = _paginate(self._history_window(thread, params), params, default_limit=1000)
        return {
            "messages": [_with_metadata(m.to_api(self.ws), params) for m in page],
            "has_more": bool(cursor),
            "response_metadata": {"next_cursor": cursor},
        }

    # -- chat ---------------------------------------------------------------------------------

    def chat_post_message(self, params: Params) -> dict[str, Any]:
        channel = self._post_target(params.text("channel"))
        text, blocks, attachments = self._content(params)
        if not text and not blocks and not attachments:
            raise SlackApiFailure("no_text")
        metadata = _checked_metadata(params.get("metadata"))
        message = self.bot_message(
            channel,
            text=text or "",
            blocks=blocks,
            attachments=attachments,
            thread_ts=params.text("thread_ts") or None,
            reply_broadcast=params.flag("reply_broadcast"),
            metadata=metadata,
        )
        return {"channel": channel.id, "ts": message.ts, "message": message.to_api(self.ws)}

    def chat_update(self, params: Params) -> dict[str, Any]:
        channel = self._channel(params.text("channel"))
        message = self._message(channel, params.text("ts"))
        if message.user != self.ws.bot_user_id:
            raise SlackApiFailure("cant_update_message")
        text, blocks, attachments = self._content(params)
        if text is None and params.get("blocks") is None and params.get("attachments") is None:
            raise SlackApiFailure("no_text")
        # Like Slack: fields left out keep their old value; an empty ``blocks`` array removes the blocks.
        if text is not None:
            message.text = text
        if params.get("blocks") is not None:
            message.blocks = blocks
        if params.get("attachments") is not None:
            message.attachments = attachments
        message.edited_ts = self.ws.new_ts()
        self.notify(StateChange("message_updated", channel.id, message.to_api(self.ws)))
        return {"channel": channel.id, "ts": message.ts, "text": message.text, "message": message.to_api(self.ws)}

    def chat_delete(self, params: Params) -> dict[str, Any]:
        channel = self._channel(params.text("channel"))
        message = self._message(channel, params.text("ts"))
        if message.user != self.ws.bot_user_id:
            raise SlackApiFailure("cant_delete_message")
        message.deleted = True
        self.notify(StateChange("message_deleted", channel.id, {"ts": message.ts}))
        return {"channel": channel.id, "ts": message.ts}

    def chat_post_ephemeral(self, params: Params) -> dict[str, Any]:
        channel = self._post_target(params.text("channel"))
        user_id = params.text("user")
        self._user(user_id)
        if user_id not in channel.members:
            raise SlackApiFailure("user_not_in_channel")
        text, blocks, attachments = self._content(params)
        if not text and not blocks and not attachments:
            raise SlackApiFailure("no_text")
        ephemeral = EphemeralMessage(
            channel_id=channel.id,
            user_id=user_id or "",
            ts=self.ws.new_ts(),
            text=text or "",
            blocks=blocks,
            thread_ts=params.text("thread_ts") or None,
        )
        self.ws.ephemerals.append(ephemeral)
        self.notify(
            StateChange(
                "ephemeral_posted",
                channel.id,
                {"user": ephemeral.user_id, "ts": ephemeral.ts, "text": ephemeral.text, "blocks": blocks},
            )
        )
        return {"message_ts": ephemeral.ts}

    def chat_get_permalink(self, params: Params) -> dict[str, Any]:
        channel = self._channel(params.text("channel"))
        message = self._message(channel, params.text("message_ts"))
        return {"channel": channel.id, "permalink": self.permalink(channel.id, message)}

    def permalink(self, channel_id: str, message: SlackMessage) -> str:
        link = f"{self.ws.team.url}archives/{channel_id}/p{message.ts.replace('.', '')}"
        if message.is_reply:
            link += f"?thread_ts={message.thread_ts}&cid={channel_id}"
        return link

    # -- pins, bookmarks, reactions -----------------------------------------------------------

    def pin(self, channel: SlackChannel, message: SlackMessage, user_id: str) -> Pin:
        if message.pinned:
            raise SlackApiFailure("already_pinned")
        pin = Pin(channel.id, message.ts, user_id, int(self.ws.now()))
        channel.pins.append(pin)
        message.pinned = True
        self.notify(StateChange("pin_added", channel.id, {"ts": message.ts, "user": user_id}))
        return pin

    def pins_add(self, params: Params) -> dict[str, Any]:
        channel = self._channel(params.text("channel"))
        self._require_member(channel)
        if not params.text("timestamp"):
            raise SlackApiFailure("no_item_specified")
        self.pin(channel, self._message(channel, params.text("timestamp")), self.ws.bot_user_id)
        return {}

    def pins_remove(self, params: Params) -> dict[str, Any]:
        channel = self._channel(params.text("channel"))
        self._require_member(channel)
        message = self._message(channel, params.text("timestamp"))
        if not message.pinned:
            raise SlackApiFailure("no_pin")
        message.pinned = False
        channel.pins = [p for p in channel.pins if p.ts != message.ts]
        self.notify(StateChange("pin_removed", channel.id, {"ts": message.ts}))
        return {}

    def pins_list(self, params: Params) -> dict[str, Any]:
        channel = self._channel(params.text("channel"))
        self._require_member(channel)
        items = []
        for pin in channel.pins:
            message = self.ws.find_message(channel.id, pin.ts)
            if message is not None:
                items.append(
                    {
                        "type": "message",
                        "created": pin.created,
                        "created_by": pin.pinned_by,
                        "channel": channel.id,
                        "message": message.to_api(self.ws),
                    }
                )
        return {"items": items}

    def bookmarks_add(self, params: Params) -> dict[str, Any]:
        channel = self._channel(params.text("channel_id"))
        self._require_member(channel)
        title = params.required("title")
        kind = params.required("type")
        if kind != "link":
            raise SlackApiFailure("invalid_bookmark_type")
        link = params.text("link")
        if not link or not re.match(r"https?://", link):
            raise SlackApiFailure("invalid_link")
        bookmark = Bookmark(
            id=self.ws.ids.new("Bk"),
            channel_id=channel.id,
            title=title,
            type=kind,
            link=link,
            emoji=params.text("emoji"),
            created_by=self.ws.bot_user_id,
            created=int(self.ws.now()),
        )
        channel.bookmarks.append(bookmark)
        self.notify(StateChange("bookmark_added", channel.id, bookmark.to_api(self.ws)))
        return {"bookmark": bookmark.to_api(self.ws)}

    def bookmarks_list(self, params: Params) -> dict[str, Any]:
        channel = self._channel(params.text("channel_id"))
        self._require_member(channel)
        return {"bookmarks": [b.to_api(self.ws) for b in channel.bookmarks]}

    def react(self, channel: SlackChannel, message: SlackMessage, name: str, user_id: str) -> None:
        name = name.strip(":")
        if not _EMOJI_NAME.fullmatch(name):
            raise SlackApiFailure("invalid_name")
        reaction = message.reaction(name)
        if reaction is None:
            reaction = Reaction(name)
            message.reactions.append(reaction)
        if user_id in reaction.users:
            raise SlackApiFailure("already_reacted")
        reaction.users.append(user_id)
        self.notify(StateChange("reaction_added", channel.id, {"ts": message.ts, "name": name, "user": user_id}))

    def reactions_add(self, params: Params) -> dict[str, Any]:
        channel = self._channel(params.text("channel"))
        self._require_member(channel)
        if not params.text("timestamp"):
            raise SlackApiFailure("no_item_specified")
        message = self._message(channel, params.text("timestamp"))
        self.react(channel, message, params.text("name") or "", self.ws.bot_user_id)
        return {}

    def reactions_remove(self, params: Params) -> dict[str, Any]:
        channel = self._channel(params.text("channel"))
        message = self._message(channel, params.text("timestamp"))
        reaction = message.reaction((params.text("name") or "").strip(":"))
        if reaction is None or self.ws.bot_user_id not in reaction.users:
            raise SlackApiFailure("no_reaction")
        reaction.users.remove(self.ws.bot_user_id)
        if not reaction.users:
            message.reactions.remove(reaction)
        self.notify(StateChange("reaction_removed", channel.id, {"ts": message.ts, "name": reaction.name}))
        return {}

    def reactions_get(self, params: Params) -> dict[str, Any]:
        channel = self._channel(params.text("channel"))
        message = self._message(channel, params.text("timestamp"))
        return {"type": "message", "channel": channel.id, "message": message.to_api(self.ws)}

    # -- views --------------------------------------------------------------------------------

    def issue_trigger(self, user_id: str) -> str:
        trigger_id = f"{int(self.ws.now())}.{self.ws.ids.new('', 12).lower()}.{self.ws.ids.secret(32).lower()}"
        self.ws.triggers[trigger_id] = Trigger(trigger_id, user_id, self.ws.now())
        return trigger_id

    def _exchange_trigger(self, trigger_id: str) -> str | None:
        """The user the trigger was issued for; triggers work once, within ``trigger_ttl`` seconds."""
        trigger = self.ws.triggers.get(trigger_id)
        if trigger is None:
            if self.strict_trigger_ids:
                raise SlackApiFailure("invalid_trigger_id")
            return None
        if trigger.exchanged:
            raise SlackApiFailure("exchanged_trigger_id")
        if self.ws.now() - trigger.issued > self.trigger_ttl:
            raise SlackApiFailure("expired_trigger_id")
        trigger.exchanged = True
        return trigger.user_id

    def _view_param(self, params: Params) -> dict[str, Any]:
        view = params.get("view")
        if view is None:
            raise SlackApiFailure("invalid_arguments", "[ERROR] missing required field: view")
        check_view(view)
        return view

    def _new_view(self, params: Params, *, root: SlackView | None) -> SlackView:
        trigger_id = params.required("trigger_id", "invalid_trigger_id")
        view = self._view_param(params)
        user_id = self._exchange_trigger(trigger_id)
        external_id = str(view.get("external_id", ""))
        if external_id and any(v.external_id == external_id for v in self.ws.views.values()):
            raise SlackApiFailure("duplicate_external_id")
        view_id = self.ws.ids.new("V")
        opened = SlackView(
            id=view_id,
            team_id=self.ws.team.id,
            app_id=self.ws.app_id,
            bot_id=self.ws.bot_id,
            view=view,
            hash=f"{int(self.ws.now())}.{self.ws.ids.secret(8)}",
            user_id=user_id or (root.user_id if root else None),
            trigger_id=trigger_id,
            root_view_id=root.root_view_id if root else view_id,
            previous_view_id=root.id if root else None,
            external_id=external_id,
        )
        self.ws.views[view_id] = opened
        self.notify(StateChange("view_opened", None, {"user": opened.user_id, "view": opened.to_api()}))
        return opened

    def views_open(self, params: Params) -> dict[str, Any]:
        return {"view": self._new_view(params, root=None).to_api()}

    def views_push(self, params: Params) -> dict[str, Any]:
        trigger = self.ws.triggers.get(params.text("trigger_id") or "")
        user_id = trigger.user_id if trigger else None
        stack = [v for v in self.ws.views.values() if not v.closed and v.type == "modal" and v.user_id == user_id]
        if len(stack) >= 3:
            raise SlackApiFailure("push_limit_reached")
        return {"view": self._new_view(params, root=stack[-1] if stack else None).to_api()}

    def views_update(self, params: Params) -> dict[str, Any]:
        view_id, external_id = params.text("view_id"), params.text("external_id")
        if not view_id and not external_id:
            raise SlackApiFailure("invalid_arguments", "[ERROR] either view_id or external_id is required")
        existing = (
            self.ws.views.get(view_id)
            if view_id
            else next((v for v in self.ws.views.values() if v.external_id == external_id), None)
        )
        if existing is None:
            raise SlackApiFailure("not_found")
        view = self._view_param(params)
        expected_hash = params.text("hash")
        if expected_hash and expected_hash != existing.hash:
            raise SlackApiFailure("hash_conflict")
        existing.history.append(existing.view)
        existing.view = view
        existing.external_id = str(view.get("external_id", existing.external_id))
        existing.hash = f"{int(self.ws.now())}.{self.ws.ids.secret(8)}"
        self.notify(StateChange("view_updated", None, {"user": existing.user_id, "view": existing.to_api()}))
        return {"view": existing.to_api()}

    # -- files --------------------------------------------------------------------------------

    def files_get_upload_url_external(self, params: Params) -> dict[str, Any]:
        filename = params.required("filename")
        length = params.integer("length", 0)
        if length <= 0:
            raise SlackApiFailure("invalid_arguments", "[ERROR] length must be a positive integer")
        file = SlackFile(
            id=self.ws.ids.new("F"),
            name=filename,
            title=filename,
            user=self.ws.bot_user_id,
            created=int(self.ws.now()),
            length=length,
            alt_txt=params.text("alt_txt"),
            snippet_type=params.text("snippet_type"),
            download_base=self.base_url(),
        )
        self.ws.files[file.id] = file
        token = self.ws.ids.secret(32)
        self.upload_tokens[token] = file.id
        return {"upload_url": f"{self.base_url()}/upload/v1/{token}", "file_id": file.id}

    def receive_upload(self, token: str, content: bytes) -> SlackFile | None:
        """Store the bytes POSTed to an upload URL; None when the URL is unknown or used."""
        file_id = self.upload_tokens.pop(token, None)
        if file_id is None:
            return None
        file = self.ws.files[file_id]
        file.content = content
        file.uploaded = True
        return file

    def files_complete_upload_external(self, params: Params) -> dict[str, Any]:
        entries = params.get("files")
        if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
            raise SlackApiFailure("invalid_arguments", "[ERROR] files must be a JSON array of {id, title}")
        files: list[SlackFile] = []
        for entry in entries:
            file = self.ws.files.get(str(entry.get("id", "")))
            if file is None or not file.uploaded or file.completed:
                raise SlackApiFailure("file_not_found", f"[ERROR] file {entry.get('id')} was not uploaded")
            files.append(file)
        targets = [self._post_target(c) for c in ([params.text("channel_id")] if params.text("channel_id") else [])]
        targets += [self._post_target(c) for c in params.csv("channels")]
        blocks = params.get("blocks")
        check_message_blocks(blocks)
        for entry, file in zip(entries, files, strict=True):
            file.title = str(entry.get("title") or file.name)
            file.completed = True
        for channel in targets:
            for file in files:
                file.channels.append(channel.id)
            self.bot_message(
                channel,
                text=params.text("initial_comment") or "",
                blocks=blocks or None,
                files=[f.id for f in files],
                thread_ts=params.text("thread_ts") or None,
            )
        for file in files:
            self.notify(StateChange("file_uploaded", file.channels[0] if file.channels else None, file.to_api(self.ws)))
        return {"files": [f.to_api(self.ws) for f in files]}

    def files_info(self, params: Params) -> dict[str, Any]:
        file = self.ws.files.get(params.text("file") or "")
        if file is None or not file.completed:
            raise SlackApiFailure("file_not_found")
        return {"file": file.to_api(self.ws), "comments": [], "response_metadata": {"next_cursor": ""}}
