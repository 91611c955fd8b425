"""The Slack Web API client: ``SLACK_API_URL`` honoured, 429/5xx/connection errors retried."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.retry_after import parse_retry_after


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


def _retry_after_header(headers: Mapping[str, Any] | None) -> float | None:
    """Seconds of a ``Retry-After`` header (slack_sdk's retry handlers see each value as a list)."""
    value = next((v for k, v in (headers or {}).items() if str(k).lower() == "retry-after"), None)
    if isinstance(value, list):
        value = value[0] if value else None
    return parse_retry_after(None if value is None else str(value))


def slack_retry_after(exc: SlackApiError) -> float | None:
    """The seconds of a rate-limited answer's ``Retry-After``, or None."""
    return _retry_after_header(getattr(exc.response, "headers", None))


class ShortRateLimitRetry(AsyncRateLimitErrorRetryHandler):
    """Waits out a 429 in place only when Slack asks for at most ``max_wait`` seconds; a longer
    Retry-After comes back to the caller, which reschedules its job instead of holding it."""

    def __init__(self, *, max_wait: float, max_retry_count: int = 2) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    async def _can_retry_async(self, *, state, request, response=None, error=None) -> bool:
        if not await super()._can_retry_async(state=state, request=request, response=response, error=error):
            return False
        wait = _retry_after_header(response.headers)
        return wait is None or wait <= self.max_wait


def slack_error(exc: SlackApiError) -> str:
    """Slack's error code (``channel_not_found``), or what came back instead of Slack's JSON
    (``exc.response.get`` raises when the answer was text, e.g. from a proxy)."""
    data = getattr(exc.response, "data", None)
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])
    status = getattr(exc.response, "status_code", None) or getattr(exc.response, "status", None)
    return f"HTTP {status}" if status else type(exc).__name__
