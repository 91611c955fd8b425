"""Pagers: deliver one page to one target (Slack DM, user group, channel, PagerDuty, Opsgenie).

``build_pagers`` returns the registry keyed by target kind; ``pager_for`` picks
the pager of a target. When and whom to page is the escalation engine's job.
"""

from __future__ import annotations

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.pagers.base import (
    Pager,
    PageRequest,
    PagerError,
    PageResult,
    PersonDelivery,
    incident_dedup_key,
    pager_for,
    split_target,
)
from bot.pagers.http import RetryPolicy
from bot.pagers.opsgenie import OpsgeniePager
from bot.pagers.pagerduty import PagerDutyPager
from bot.pagers.slack import SlackChannelPager, SlackGroupPager, SlackUserPager

__all__ = [
    "PageRequest",
    "PageResult",
    "Pager",
    "PagerError",
    "PersonDelivery",
    "RetryPolicy",
    "build_pagers",
    "incident_dedup_key",
    "pager_for",
    "split_target",
]


def build_pagers(
    settings: Settings,
    http_session: aiohttp.ClientSession,
    slack_client: AsyncWebClient,
    *,
    retry: RetryPolicy | None = None,
    page_client: AsyncWebClient | None = None,
) -> dict[str, Pager]:
    """One pager per target kind: ``user``, ``group``, ``channel``, ``pagerduty``, ``opsgenie``.

    ``oncall:`` targets are not in the registry: the escalation engine resolves
    them to ``user:`` targets first. The PagerDuty and Opsgenie pagers are always
    present; without their keys they fail with an error naming the variable to set.
    Slack pages are posted through ``page_client`` when given (see
    :func:`bot.pagers.slack.page_client`); ``slack_client`` reads group members.
    """
    sender = page_client or slack_client
    return {
        "user": SlackUserPager(sender),
        "group": SlackGroupPager(sender, members_client=slack_client),
        "channel": SlackChannelPager(sender),
        "pagerduty": PagerDutyPager(
            http_session, str(settings.pagerduty_events_url), settings.pagerduty_routing_keys, retry=retry
        ),
        "opsgenie": OpsgeniePager(
            http_session, str(settings.opsgenie_api_url), settings.opsgenie_api_key, retry=retry
        ),
    }
