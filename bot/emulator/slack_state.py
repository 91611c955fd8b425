"""In-memory workspace state of the Slack emulator: users, groups, channels, messages, files, views.

Every model knows how to render itself as the JSON object Slack's Web API returns (``to_api``).
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from bot.clock import Clock, SystemClock

_ID_ALPHABET = string.ascii_uppercase + string.digits

# Subtypes of the messages Slack itself writes into a channel (joins, topic changes...).
SYSTEM_SUBTYPES = frozenset(
    {"channel_join", "channel_leave", "channel_topic", "channel_purpose", "channel_name", "channel_archive"}
)


class SlackApiFailure(Exception):
    """A Web API method refused the call: becomes ``{"ok": false, "error": error, ...}``."""

    def __init__(self, error: str, *messages: str, **extra: Any) -> None:
        super().__init__(error if not messages else f"{error}: {'; '.join(messages)}")
        self.error = error
        self.messages = list(messages)
        self.extra = extra

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error": self.error, **self.extra}
        if self.messages:
            body["response_metadata"] = {"messages": self.messages}
        return body


@dataclass
class Team:
    id: str = "T0FIREBRK"
    name: str = "Firebreak Demo"
    domain: str = "firebreak-demo"

    @property
    def url(self) -> str:
        return f"https://{self.domain}.slack.com/"


@dataclass
class SlackUser:
    id: str
    name: str
    real_name: str
    tz: str = "UTC"
    email: str | None = None
    title: str = ""
    is_bot: bool = False
    bot_id: str | None = None
    app_id: str | None = None
    is_admin: bool = False
    deleted: bool = False

    @property
    def display_name(self) -> str:
        return self.name

    def to_api(self, team_id: str) -> dict[str, Any]:
        zone = ZoneInfo(self.tz)
        now = datetime.now(zone)
        offset = now.utcoffset()
        profile: dict[str, Any] = {
            "real_name": self.real_name,
            "real_name_normalized": self.real_name,
            "display_name": self.display_name,
            "display_name_normalized": self.display_name,
            "title": self.title,
            "team": team_id,
            "image_48": f"https://avatars.example.invalid/{self.id}_48.png",
        }
        if self.email:
            profile["email"] = self.email
        if self.bot_id:
            profile["bot_id"] = self.bot_id
            profile["api_app_id"] = self.app_id
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "deleted": self.deleted,
            "real_name": self.real_name,
            "tz": self.tz,
            "tz_label": now.tzname(),
            "tz_offset": int(offset.total_seconds()) if offset else 0,
            "profile": profile,
            "is_admin": self.is_admin,
            "is_owner": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 1_700_000_000,
        }


@dataclass
class SlackUserGroup:
    id: str
    handle: str
    name: str
    users: list[str] = field(default_factory=list)
    description: str = ""
    disabled: bool = False
    created_by: str = ""

    def to_api(self, team_id: str, *, include_users: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "team_id": team_id,
            "is_usergroup": True,
            "is_subteam": True,
            "name": self.name,
            "description": self.description,
            "handle": self.handle,
            "is_external": False,
            "date_create": 1_700_000_000,
            "date_update": 1_700_000_000,
            "date_delete": 1_700_000_001 if self.disabled else 0,
            "auto_type": None,
            "auto_provision": False,
            "enterprise_subteam_id": "",
            "created_by": self.created_by,
            "updated_by": self.created_by,
            "deleted_by": None,
            "prefs": {"channels": [], "groups": []},
            "user_count": len(self.users),
        }
        if include_users:
            data["users"] = list(self.users)
        return data


@dataclass
class Reaction:
    name: str
    users: list[str] = field(default_factory=list)

    def to_api(self) -> dict[str, Any]:
        return {"name": self.name, "users": list(self.users), "count": len(self.users)}


@dataclass
class SlackMessage:
    channel_id: str
    ts: str
    user: str
    text: str = ""
    blocks: list[dict[str, Any]] | None = None
    attachments: list[dict[str, Any]] | None = None
    thread_ts: str | None = None
    reply_broadcast: bool = False
    subtype: str | None = None
    bot_id: str | None = None
    app_id: str | None = None
    metadata: dict[str, Any] | None = None
    files: list[str] = field(default_factory=list)  # file ids
    reactions: list[Reaction] = field(default_factory=list)
    pinned: bool = False
    edited_ts: str | None = None
    replies: list[str] = field(default_factory=list)  # ts of replies, for a thread parent
    deleted: bool = False

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    @property
    def is_system(self) -> bool:
        return self.subtype in SYSTEM_SUBTYPES

    def reaction(self, name: str) -> Reaction | None:
        return next((r for r in self.reactions if r.name == name), None)

    def to_api(self, workspace: Workspace | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {"type": "message", "ts": self.ts, "user": self.user, "text": self.text}
        if workspace is not None:
            data["team"] = workspace.team.id
        if self.subtype:
            data["subtype"] = self.subtype
        if self.bot_id:
            data["bot_id"] = self.bot_id
            data["app_id"] = self.app_id
            if workspace is not None:
                data["bot_profile"] = workspace.bot_profile()
        if self.blocks is not None:
            data["blocks"] = self.blocks
        if self.attachments:
            data["attachments"] = self.attachments
        if self.metadata:
            data["metadata"] = self.metadata
        if self.thread_ts:
            data["thread_ts"] = self.thread_ts
        if self.is_reply and workspace is not None:
            parent = workspace.find_message(self.channel_id, self.thread_ts or "")
            if parent is not None:
                data["parent_user_id"] = parent.user
        if self.reply_broadcast:
            data["subtype"] = "thread_broadcast"
        if self.replies and workspace is not None:
            replies = [m for m in (workspace.find_message(self.channel_id, ts) for ts in self.replies) if m]
            users = list(dict.fromkeys(m.user for m in replies))
            data.update(
                reply_count=len(replies),
                reply_users_count=len(users),
                reply_users=users,
                latest_reply=replies[-1].ts if replies else self.ts,
            )
        if self.edited_ts:
            data["edited"] = {"user": self.user, "ts": self.edited_ts}
        if self.reactions:
            data["reactions"] = [r.to_api() for r in self.reactions]
        if self.pinned:
            data["pinned_to"] = [self.channel_id]
        if self.files and workspace is not None:
            data["files"] = [workspace.files[f].to_api(workspace) for f in self.files if f in workspace.files]
            data["upload"] = True
        return data


@dataclass
class Pin:
    channel_id: str
    ts: str
    pinned_by: str
    created: int


@dataclass
class Bookmark:
    id: str
    channel_id: str
    title: str
    type: str
    link: str | None
    emoji: str | None
    created_by: str
    created: int

    def to_api(self, workspace: Workspace) -> dict[str, Any]:
        return {
            "id": self.id,
            "channel_id": self.channel_id,
            "title": self.title,
            "link": self.link,
            "emoji": self.emoji,
            "icon_url": None,
            "type": self.type,
            "entity_id": None,
            "date_created": self.created,
            "date_updated": 0,
            "rank": "U",
            "last_updated_by_user_id": self.created_by,
            "last_updated_by_team_id": workspace.team.id,
            "shortcut_id": None,
            "app_id": workspace.app_id,
        }


@dataclass
class SlackChannel:
    id: str
    name: str
    is_private: bool = False
    is_im: bool = False
    is_mpim: bool = False
    creator: str = ""
    created: int = 0
    members: list[str] = field(default_factory=list)
    topic: str = ""
    topic_set_by: str = ""
    topic_set_at: int = 0
    purpose: str = ""
    is_archived: bool = False
    is_general: bool = False
    im_user: str | None = None  # the other party of a bot IM
    messages: list[SlackMessage] = field(default_factory=list)
    pins: list[Pin] = field(default_factory=list)
    bookmarks: list[Bookmark] = field(default_factory=list)

    @property
    def is_public(self) -> bool:
        return not (self.is_private or self.is_im or self.is_mpim)

    @property
    def channel_type(self) -> Literal["channel", "group", "im", "mpim"]:
        if self.is_im:
            return "im"
        if self.is_mpim:
            return "mpim"
        return "group" if self.is_private else "channel"

    def to_api(self, workspace: Workspace, *, include_num_members: bool = False) -> dict[str, Any]:
        if self.is_im:
            return {
                "id": self.id,
                "created": self.created,
                "is_im": True,
                "is_org_shared": False,
                "user": self.im_user,
                "is_user_deleted": False,
                "priority": 0,
            }
        data: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "is_channel": self.is_public,
            "is_group": self.is_private and not self.is_mpim,
            "is_im": False,
            "is_mpim": self.is_mpim,
            "is_private": self.is_private or self.is_mpim,
            "created": self.created,
            "is_archived": self.is_archived,
            "is_general": self.is_general,
            "unlinked": 0,
            "name_normalized": self.name,
            "is_shared": False,
            "is_org_shared": False,
            "is_ext_shared": False,
            "is_pending_ext_shared": False,
            "pending_shared": [],
            "context_team_id": workspace.team.id,
            "parent_conversation": None,
            "creator": self.creator,
            "is_member": workspace.bot_user_id in self.members,
            "topic": {"value": self.topic, "creator": self.topic_set_by, "last_set": self.topic_set_at},
            "purpose": {"value": self.purpose, "creator": self.creator if self.purpose else "", "last_set": 0},
            "previous_names": [],
        }
        if include_num_members:
            data["num_members"] = len(self.members)
        return data


@dataclass
class SlackFile:
    id: str
    name: str
    title: str
    user: str
    created: int
    length: int
    content: bytes = b""
    uploaded: bool = False
    completed: bool = False
    alt_txt: str | None = None
    snippet_type: str | None = None
    channels: list[str] = field(default_factory=list)
    download_base: str = ""

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    @property
    def filetype(self) -> str:
        return self.name.rsplit(".", 1)[-1].lower() if "." in self.name else "binary"

    @property
    def mimetype(self) -> str:
        return {
            "md": "text/markdown",
            "txt": "text/plain",
            "json": "application/json",
            "html": "text/html",
            "csv": "text/csv",
            "png": "image/png",
            "pdf": "application/pdf",
        }.get(self.filetype, "application/octet-stream")

    def to_api(self, workspace: Workspace) -> dict[str, Any]:
        url = f"{self.download_base}/files/{self.id}/{self.name}"
        return {
            "id": self.id,
            "created": self.created,
            "timestamp": self.created,
            "name": self.name,
            "title": self.title,
            "mimetype": self.mimetype,
            "filetype": self.filetype,
            "pretty_type": self.filetype.upper(),
            "user": self.user,
            "user_team": workspace.team.id,
            "size": len(self.content),
            "mode": "hosted",
            "is_external": False,
            "is_public": any(c in workspace.channels and workspace.channels[c].is_public for c in self.channels),
            "url_private": url,
            "url_private_download": url + "?download=1",
            "permalink": f"{workspace.team.url}files/{self.user}/{self.id}/{self.name}",
            "channels": [c for c in self.channels if c.startswith("C")],
            "groups": [c for c in self.channels if c.startswith("G")],
            "ims": [c for c in self.channels if c.startswith("D")],
            "alt_txt": self.alt_txt,
        }


@dataclass
class SlackView:
    id: str
    team_id: str
    app_id: str
    bot_id: str
    view: dict[str, Any]
    hash: str
    user_id: str | None
    trigger_id: str | None
    root_view_id: str
    previous_view_id: str | None = None
    external_id: str = ""
    closed: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)  # earlier versions, oldest first

    @property
    def type(self) -> str:
        return str(self.view.get("type", "modal"))

    @property
    def title(self) -> str:
        title = self.view.get("title") or {}
        return str(title.get("text", "")) if isinstance(title, dict) else ""

    @property
    def blocks(self) -> list[dict[str, Any]]:
        return list(self.view.get("blocks") or [])

    @property
    def callback_id(self) -> str:
        return str(self.view.get("callback_id", ""))

    @property
    def private_metadata(self) -> str:
        return str(self.view.get("private_metadata", ""))

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "team_id": self.team_id,
            "type": self.type,
            "title": self.view.get("title"),
            "submit": self.view.get("submit"),
            "close": self.view.get("close"),
            "blocks": self.blocks,
            "private_metadata": self.private_metadata,
            "callback_id": self.callback_id,
            "state": {"values": {}},
            "hash": self.hash,
            "clear_on_close": bool(self.view.get("clear_on_close", False)),
            "notify_on_close": bool(self.view.get("notify_on_close", False)),
            "root_view_id": self.root_view_id,
            "previous_view_id": self.previous_view_id,
            "app_id": self.app_id,
            "external_id": self.external_id,
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }


@dataclass
class EphemeralMessage:
    """A message only ``user_id`` sees: chat.postEphemeral or an ephemeral response_url answer."""

    channel_id: str
    user_id: str
    ts: str
    text: str = ""
    blocks: list[dict[str, Any]] | None = None
    thread_ts: str | None = None
    source: Literal["chat.postEphemeral", "response_url"] = "chat.postEphemeral"
    response_url_token: str | None = None
    replaced: bool = False  # superseded by a later replace_original answer
    deleted: bool = False


@dataclass
class ResponseUrl:
    token: str
    channel_id: str
    user_id: str
    message_ts: str | None  # the message a block action came from, for replace_original
    created: float
    uses: int = 0


@dataclass
class ResponseUrlPost:
    """One POST the app made to a response URL, and what the emulator did with it."""

    token: str
    channel_id: str
    user_id: str
    payload: dict[str, Any]
    status: int
    outcome: str  # "ephemeral", "in_channel", "replaced", "deleted" or the error


@dataclass
class Trigger:
    id: str
    user_id: str
    issued: float
    exchanged: bool = False


class IdFactory:
    """Slack-looking, deterministic ids (``C`` + 10 characters...)."""

    def __init__(self, seed: int = 0) -> None:
        self._random = random.Random(seed)
        self._issued: set[str] = set()

    def new(self, prefix: str, length: int = 10) -> str:
        while True:
            candidate = prefix + "".join(self._random.choice(_ID_ALPHABET) for _ in range(length))
            if candidate not in self._issued:
                self._issued.add(candidate)
                return candidate

    def secret(self, length: int = 24) -> str:
        alphabet = string.ascii_letters + string.digits
        return "".join(self._random.choice(alphabet) for _ in range(length))


class Workspace:
    """All the state of one emulated Slack workspace, with the bot user installed in it."""

    def __init__(
        self,
        *,
        team: Team,
        app_id: str,
        bot_user_id: str,
        bot_id: str,
        bot_name: str,
        clock: Clock | None = None,
        id_seed: int = 0,
    ) -> None:
        self.team = team
        self.app_id = app_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.bot_name = bot_name
        self.clock: Clock = clock or SystemClock()
        self.ids = IdFactory(id_seed)
        self.users: dict[str, SlackUser] = {}
        self.usergroups: dict[str, SlackUserGroup] = {}
        self.channels: dict[str, SlackChannel] = {}
        self.files: dict[str, SlackFile] = {}
        self.views: dict[str, SlackView] = {}
        self.ephemerals: list[EphemeralMessage] = []
        self.response_urls: dict[str, ResponseUrl] = {}
        self.response_url_posts: list[ResponseUrlPost] = []
        self.triggers: dict[str, Trigger] = {}
        self._last_ts_micros = 0
        self.add_user(
            SlackUser(
                id=bot_user_id,
                name=bot_name,
                real_name=bot_name.capitalize(),
                is_bot=True,
                bot_id=bot_id,
                app_id=app_id,
            )
        )

    # -- time ---------------------------------------------------------------------------------

    def now(self) -> float:
        return self.clock.now().timestamp()

    def new_ts(self) -> str:
        """A message timestamp, strictly increasing within the workspace like Slack's."""
        micros = max(int(self.now() * 1_000_000), self._last_ts_micros + 1)
        self._last_ts_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    # -- lookups ------------------------------------------------------------------------------

    def bot_profile(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "app_id": self.app_id,
            "name": self.bot_name,
            "deleted": False,
            "updated": 1_700_000_000,
            "team_id": self.team.id,
            "icons": {
                f"image_{size}": f"https://avatars.example.invalid/{self.bot_id}_{size}.png" for size in (36, 48, 72)
            },
        }

    def channel_by_name(self, name: str) -> SlackChannel | None:
        name = name.removeprefix("#")
        return next((c for c in self.channels.values() if c.name == name and not c.is_im), None)

    def find_message(self, channel_id: str, ts: str) -> SlackMessage | None:
        channel = self.channels.get(channel_id)
        if channel is None:
            return None
        return next((m for m in channel.messages if m.ts == ts and not m.deleted), None)

    def im_with(self, user_id: str) -> SlackChannel | None:
        return next((c for c in self.channels.values() if c.is_im and c.im_user == user_id), None)

    def open_im(self, user_id: str) -> tuple[SlackChannel, bool]:
        """The bot's DM with ``user_id``, created on first use; returns (channel, already_open)."""
        existing = self.im_with(user_id)
        if existing is not None:
            return existing, True
        channel = SlackChannel(
            id=self.ids.new("D"),
            name=user_id,
            is_im=True,
            creator=self.bot_user_id,
            created=int(self.now()),
            members=[self.bot_user_id, user_id],
            im_user=user_id,
        )
        self.channels[channel.id] = channel
        return channel, False

    # -- seeding ------------------------------------------------------------------------------

    def add_user(self, user: SlackUser) -> SlackUser:
        self.users[user.id] = user
        return user

    def add_usergroup(self, group: SlackUserGroup) -> SlackUserGroup:
        self.usergroups[group.id] = group
        return group

    def add_channel(self, channel: SlackChannel) -> SlackChannel:
        if not channel.created:
            channel.created = int(self.now())
        self.channels[channel.id] = channel
        return channel


# The sample team: the three members of the sample on-call rotation, a lead, a manager and an executive.
DEFAULT_USERS: tuple[SlackUser, ...] = (
    SlackUser("U024BE7LH", "ava", "Ava Patel", "America/New_York", "ava@example.com", "Backend engineer"),
    SlackUser("U0G9QF9C6", "ben", "Ben Okafor", "Europe/London", "ben@example.com", "Backend engineer"),
    SlackUser("U1H2J3K4L", "chen", "Chen Wei", "America/Los_Angeles", "chen@example.com", "SRE"),
    SlackUser("U2D4N5A6K", "dana", "Dana Kim", "America/Chicago", "dana@example.com", "Engineering lead"),
    SlackUser("U3E7L8I9N", "eli", "Eli Novak", "Europe/Berlin", "eli@example.com", "Eng manager", is_admin=True),
    SlackUser("U4F5A6Y7R", "fay", "Fay Romero", "America/New_York", "fay@example.com", "CTO", is_admin=True),
)

DEFAULT_USERGROUPS: tuple[SlackUserGroup, ...] = (
    SlackUserGroup("S0PLATFORM", "platform", "Platform team", ["U024BE7LH", "U0G9QF9C6", "U1H2J3K4L"]),
    SlackUserGroup("S0LEADS", "leads", "Engineering leads", ["U2D4N5A6K", "U024BE7LH"]),
    SlackUserGroup("S0MANAGERS", "managers", "Engineering managers", ["U3E7L8I9N"]),
    SlackUserGroup("S0EXEC", "exec", "Executives", ["U4F5A6Y7R"]),
)

DEFAULT_CHANNELS: tuple[tuple[str, str, bool], ...] = (
    # id, name, bot is a member
    ("C0GENERAL", "general", True),
    ("C0ANNOUNCE", "incidents", True),
    ("C0TRIAGE", "triage", True),
    ("C0RANDOM", "random", False),
)


def seed_default_workspace(workspace: Workspace) -> None:
    humans = [u.id for u in DEFAULT_USERS]
    for user in DEFAULT_USERS:
        workspace.add_user(
            SlackUser(**{f: getattr(user, f) for f in user.__dataclass_fields__})  # a fresh copy per emulator
        )
    for group in DEFAULT_USERGROUPS:
        workspace.add_usergroup(
            SlackUserGroup(group.id, group.handle, group.name, list(group.users), created_by="U3E7L8I9N")
        )
    for channel_id, name, bot_member in DEFAULT_CHANNELS:
        members = humans + ([workspace.bot_user_id] if bot_member else [])
        workspace.add_channel(
            SlackChannel(
                id=channel_id,
                name=name,
                creator="U4F5A6Y7R",
                members=members,
                is_general=name == "general",
                purpose="Company-wide announcements" if name == "general" else "",
            )
        )
