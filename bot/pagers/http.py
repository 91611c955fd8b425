"""JSON over HTTP for the pager providers, with bounded retries (tenacity).

Retried: HTTP 429 (honouring ``Retry-After``, capped), 5xx, timeouts and
dropped or reset connections. Everything else is a final answer handed back to
the caller, which knows what the provider's status codes mean. With
``RetryPolicy.defer_retry_after_over`` a ``Retry-After`` longer than that is not
waited out here: the call raises ``PagerError(defer=True, retry_after=…)`` at
once, for a caller that must not sleep (the escalation engine sends pages while
holding the incident's row lock, and reschedules the page instead).

Repeating a request is safe for every call made here: PagerDuty events carry
the incident's ``dedup_key`` and Opsgenie alerts its ``alias``, so a request
that reached the provider before the connection dropped cannot open a second
incident or alert; acknowledging and resolving are idempotent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)
from tenacity.wait import wait_base

from bot.pagers.base import PagerError
from bot.retry_after import parse_retry_after

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. Tests pass tiny timeouts and a recording ``sleep``."""

    attempts: int = 4
    initial_wait: float = 1.0
    """First back-off in seconds; it doubles on each retry up to ``max_wait``."""
    max_wait: float = 20.0
    max_retry_after: float = 60.0
    """A provider's ``Retry-After`` is honoured up to this many seconds."""
    request_timeout: float = 10.0
    """Seconds for one attempt, connection included."""
    defer_retry_after_over: float | None = None
    """A ``Retry-After`` longer than this is handed back to the caller (``PagerError``
    with ``defer`` and ``retry_after``) instead of being waited out; None: always wait."""
    sleep: Sleep = field(default=asyncio.sleep, compare=False)

    def defers(self, retry_after: float | None) -> bool:
        return (retry_after is not None and self.defer_retry_after_over is not None
                and retry_after > self.defer_retry_after_over)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if min(self.initial_wait, self.max_wait, self.max_retry_after) < 0 or self.request_timeout <= 0:
            raise ValueError("waits cannot be negative and request_timeout must be positive")


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """A final (non-retryable) HTTP answer: status and decoded body (JSON, else text)."""

    status: int
    body: Any
    headers: Mapping[str, str]

    def get(self, name: str) -> Any:
        """A top-level field of a JSON object body, or None."""
        return self.body.get(name) if isinstance(self.body, dict) else None


class _RetryableFailure(Exception):
    def __init__(self, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after




class _WaitRetryAfterOrBackoff(wait_base):
    """The provider's ``Retry-After`` when it sent one (capped), else exponential back-off."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self._backoff = wait_exponential(multiplier=policy.initial_wait, max=policy.max_wait)

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        failure = outcome.exception() if outcome is not None else None
        if isinstance(failure, _RetryableFailure) and failure.retry_after is not None:
            return min(failure.retry_after, self._policy.max_retry_after)
        return float(self._backoff(retry_state))


def _log_retry(provider: str) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning("%s: attempt %d failed (%s); retrying in %.1fs", provider, state.attempt_number, failure, wait)

    return before_sleep


async def _decode(response: aiohttp.ClientResponse) -> Any:
    text = await response.text()
    if "json" in (response.content_type or ""):
        try:
            return await response.json(content_type=None)
        except ValueError:
            return text
    return text


async def post_json(
    session: aiohttp.ClientSession,
    url: str,
    body: Mapping[str, Any],
    *,
    provider: str,
    policy: RetryPolicy,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
) -> HttpAnswer:
    """POST ``body`` as JSON, retrying transient failures; return the first final answer.

    Raises ``PagerError(transient=True)`` once ``policy.attempts`` are used up.
    ``provider`` names the service in errors and logs; headers are never logged.
    """

    async def attempt() -> HttpAnswer:
        try:
            async with session.post(
                url,
                json=dict(body),
                headers=dict(headers or {}),
                params=dict(params or {}),
                timeout=aiohttp.ClientTimeout(total=policy.request_timeout),
            ) as response:
                decoded = await _decode(response)
                if response.status == 429 or response.status >= 500:
                    raise _RetryableFailure(
                        f"HTTP {response.status}",
                        retry_after=parse_retry_after(response.headers.get("Retry-After")),
                    )
                return HttpAnswer(response.status, decoded, dict(response.headers))
        except TimeoutError:
            raise _RetryableFailure(f"no answer within {policy.request_timeout:g}s") from None
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise _RetryableFailure(f"connection failed: {type(exc).__name__}") from None

    def retryable(exc: BaseException) -> bool:
        return isinstance(exc, _RetryableFailure) and not policy.defers(exc.retry_after)

    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.attempts),
        wait=_WaitRetryAfterOrBackoff(policy),
        retry=retry_if_exception(retryable),
        sleep=policy.sleep,
        before_sleep=_log_retry(provider),
        reraise=True,
    )
    try:
        return await retrying(attempt)
    except _RetryableFailure as exc:
        if policy.defers(exc.retry_after):
            raise PagerError(
                f"{provider} asked to retry in {exc.retry_after:g}s ({exc})", transient=True,
                retry_after=exc.retry_after, defer=True,
            ) from None
        raise PagerError(
            f"{provider} unavailable after {policy.attempts} attempt(s): {exc}", transient=True,
            retry_after=exc.retry_after,
        ) from None
