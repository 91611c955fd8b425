"""Local emulators of the outside services Firebreak talks to, for tests and ``firebreak demo``."""

from bot.emulator.slack_api import EMULATOR_KEY, RecordedCall, SlackEmulator, Violation
from bot.emulator.slack_methods import StateChange
from bot.emulator.slack_state import (
    Bookmark,
    EphemeralMessage,
    ResponseUrlPost,
    SlackApiFailure,
    SlackChannel,
    SlackFile,
    SlackMessage,
    SlackUser,
    SlackUserGroup,
    SlackView,
)

__all__ = [
    "EMULATOR_KEY",
    "Bookmark",
    "EphemeralMessage",
    "RecordedCall",
    "ResponseUrlPost",
    "SlackApiFailure",
    "SlackChannel",
    "SlackEmulator",
    "SlackFile",
    "SlackMessage",
    "SlackUser",
    "SlackUserGroup",
    "SlackView",
    "StateChange",
    "Violation",
]
