"""What ``firebreak playbooks check`` needs from the configuration to resolve targets fully.

``render_check_report`` (``bot.playbooks.check``) resolves ``oncall:`` targets
itself; with these it also lists the members of ``group:`` targets (read-only
``usergroups.users.list`` calls, when a bot token is configured) and flags a
``pagerduty:`` target whose routing key is not set.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

from slack_sdk import WebClient

from bot.config import Settings
from bot.slack.client import slack_base_url


def pagerduty_key_names(settings: Settings) -> Collection[str]:
    return tuple(settings.pagerduty_routing_keys)


def slack_group_resolver(settings: Settings, *, timeout: int = 5) -> Callable[[str], Sequence[str]] | None:
    """List a user group's members through Slack, or None without a bot token."""
    if settings.slack_bot_token is None:
        return None
    client = WebClient(token=settings.slack_bot_token.get_secret_value(),
                       base_url=slack_base_url(settings), timeout=timeout)

    def members(group_id: str) -> Sequence[str]:
        return [str(user) for user in client.usergroups_users_list(usergroup=group_id).get("users") or []]

    return members
