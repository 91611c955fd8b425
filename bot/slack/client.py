"""The Slack Web API client: ``SLACK_API_URL`` honoured, 429/5xx/connection errors retried."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings


def slack_base_url(settings: Settings) -> str:
    url = str(settings.slack_api_url)
    return url if url.endswith("/") else url + "/"


def make_slack_client(settings: Settings, *, timeout: int = 15) -> AsyncWebClient:
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return AsyncWebClient(
        token=token,
        base_url=slack_base_url(settings),
        timeout=timeout,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
            AsyncRateLimitErrorRetryHandler(max_retry_count=4),
            AsyncServerErrorRetryHandler(max_retry_count=2),
        ],
    )


def slack_error(exc: SlackApiError) -> str:
    """Slack's error code (``channel_not_found``), or what came back instead of Slack's JSON
    (``exc.response.get`` raises when the answer was text, e.g. from a proxy)."""
    data = getattr(exc.response, "data", None)
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])
    status = getattr(exc.response, "status_code", None) or getattr(exc.response, "status", None)
    return f"HTTP {status}" if status else type(exc).__name__
