"""The one HTTP edge of every provider: retries for reads, exactly-once for writes.

- Reads (``ProviderHttp.read`` / ``get``, GraphQL queries) are retried with
  tenacity on 429 (honouring ``Retry-After``, capped), 5xx, timeouts and network
  errors, with bounded exponential backoff; what still fails becomes
  :class:`ProviderUnavailable`.
- Writes (``ProviderHttp.write``: the rollback trigger) are sent ONCE. A timeout,
  a reset connection or a 5xx raises :class:`AmbiguousTriggerError` (the caller
  must re-read the provider's state); a refused connection or a 429 raises
  :class:`ProviderUnavailable` (the request surely had no effect).
- 4xx answers raise :class:`ProviderRejected` with the provider's own message.

Tokens are sent as headers only and never appear in exceptions or logs.
:class:`RetryPolicy` makes every wait injectable, so tests never sleep.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from bot.providers.base import (
    AmbiguousTriggerError,
    ProviderNotConfigured,
    ProviderRejected,
    ProviderUnavailable,
)
from bot.retry_after import parse_retry_after

log = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard reads are retried, and how long any request may take."""

    max_attempts: int = 4
    initial_wait: float = 0.5  # first backoff, doubled each attempt
    max_wait: float = 8.0  # cap of one exponential backoff
    max_retry_after: float = 30.0  # a longer Retry-After gives up at once
    jitter: float = 0.25  # fraction of random extra wait
    timeout: float = 20.0  # seconds for one request, total
    connect_timeout: float = 5.0
    sleep: Sleep = field(default=asyncio.sleep, compare=False)

    def backoff(self, attempt: int) -> float:
        """The exponential wait after ``attempt`` failed attempts (1-based)."""
        base = min(self.max_wait, self.initial_wait * (2 ** max(0, attempt - 1)))
        return base + (random.uniform(0, base * self.jitter) if self.jitter else 0.0)


class TransientError(Exception):
    """An outcome worth retrying (raised by an operation given to ``call_with_retries``)."""

    def __init__(self, reason: str, *, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.status = status




async def call_with_retries(
    operation: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    provider: str,
    describe: str,
) -> T:
    """Run an idempotent ``operation``, retrying while it raises :class:`TransientError`.

    Waits ``Retry-After`` when given (giving up at once when it exceeds
    ``policy.max_retry_after``), otherwise an exponential backoff. Raises
    :class:`ProviderUnavailable` once the attempts are used up.
    """

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, TransientError) and exc.retry_after is not None:
            return exc.retry_after
        return policy.backoff(state.attempt_number)

    def stop(state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, TransientError) and exc.retry_after is not None and exc.retry_after > policy.max_retry_after:
            return True
        return stop_after_attempt(policy.max_attempts)(state)

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "%s %s: %s; retrying in %.2fs (attempt %d of %d)",
            provider, describe, exc, state.upcoming_sleep, state.attempt_number + 1, policy.max_attempts,
        )

    retrying = AsyncRetrying(
        stop=stop,
        wait=wait,
        retry=retry_if_exception_type(TransientError),
        sleep=policy.sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                return await operation()
    except TransientError as exc:
        if exc.retry_after is not None and exc.retry_after > policy.max_retry_after:
            message = f"{provider} is rate limiting us ({describe}): try again in {exc.retry_after:.0f}s."
        else:
            message = f"{provider} is unavailable ({describe}: {exc.reason}, after {policy.max_attempts} attempts)."
        raise ProviderUnavailable(message, provider=provider, retry_after=exc.retry_after) from None
    raise AssertionError("unreachable")  # pragma: no cover


# --------------------------------------------------------------------------- responses


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    data: Any  # parsed JSON, or None
    text: str


def provider_error_message(data: Any, text: str = "") -> tuple[str | None, str | None]:
    """(message, code) from the error shapes of Render ``{id, code, message}``,
    Heroku ``{id, message}``, Vercel ``{error: {code, message}}``, GitHub
    ``{message, documentation_url}`` and GraphQL ``{errors: [{message}]}``."""
    if isinstance(data, Mapping):
        error = data.get("error")
        if isinstance(error, Mapping):
            return _str(error.get("message")), _str(error.get("code"))
        errors = data.get("errors")
        if isinstance(errors, list) and errors:
            messages = [str(e.get("message")) for e in errors if isinstance(e, Mapping) and e.get("message")]
            codes = [
                str(e["extensions"]["code"])
                for e in errors
                if isinstance(e, Mapping) and isinstance(e.get("extensions"), Mapping) and e["extensions"].get("code")
            ]
            return ("; ".join(messages) or None), (codes[0] if codes else None)
        message = data.get("message") or (error if isinstance(error, str) else None)
        return _str(message), _str(data.get("code") or data.get("id"))
    snippet = text.strip()[:300]
    return (snippet or None), None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


_STATUS_HINTS = {
    400: "the request was refused",
    401: "the API token was refused",
    402: "the provider's plan does not allow this",
    403: "the API token is not allowed to do this",
    404: "not found",
    409: "conflict with the current state",
    422: "the request was refused",
}


def rejection_message(display_name: str, status: int, provider_message: str | None, *, token_env: str | None) -> str:
    """A Slack-ready sentence for a 4xx answer, keeping the provider's own words."""
    hint = _STATUS_HINTS.get(status, "the request was refused")
    text = f"{display_name} refused the request (HTTP {status}, {hint})"
    if provider_message:
        text += f": “{provider_message}”"
    if status == 401 and token_env:
        text += f". Check {token_env}."
    elif status == 403 and token_env:
        text += f". Check that {token_env} is valid and may do this."
    return text


# --------------------------------------------------------------------------- the client


class ProviderHttp:
    """A provider's base URL, auth headers and retry policy around a shared aiohttp session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        provider: str,
        display_name: str,
        base_url: str,
        headers: Mapping[str, str],
        policy: RetryPolicy | None = None,
        token_env: str | None = None,
        secrets: Sequence[str] = (),
    ) -> None:
        self.session = session
        self.provider = provider
        self.display_name = display_name
        self.base_url = base_url.rstrip("/")
        self._headers = dict(headers)
        self.policy = policy or RetryPolicy()
        self.token_env = token_env
        self._secrets = [s for s in secrets if s]

    @classmethod
    def with_token(
        cls,
        session: aiohttp.ClientSession,
        *,
        provider: str,
        display_name: str,
        base_url: str,
        token: Any,
        token_env: str,
        policy: RetryPolicy | None = None,
        auth: Callable[[str], Mapping[str, str]] = lambda secret: {"Authorization": f"Bearer {secret}"},
        headers: Mapping[str, str] | None = None,
    ) -> ProviderHttp:
        """A client authenticated with ``token`` (a SecretStr or str); refuses a missing one."""
        secret = token.get_secret_value() if hasattr(token, "get_secret_value") else token
        if not secret:
            raise ProviderNotConfigured(
                f"{display_name} is not configured: set {token_env}.", provider=display_name
            )
        return cls(
            session, provider=provider, display_name=display_name, base_url=base_url,
            headers={**auth(secret), "Accept": "application/json", **(headers or {})},
            policy=policy, token_env=token_env, secrets=[secret],
        )

    # -- public

    async def get(self, path: str, *, params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None) -> HttpResponse:
        return await self.read("GET", path, params=params, headers=headers)

    async def read(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        """An idempotent request (GET, or a GraphQL query sent by POST): retried."""
        describe = f"{method} {path}"

        async def once() -> HttpResponse:
            try:
                response = await self._send(method, path, params=params, json_body=json_body, headers=headers)
            except TimeoutError:
                raise TransientError(f"timed out after {self.policy.timeout:g}s") from None
            except aiohttp.ClientError as exc:
                raise TransientError(self._network_reason(exc)) from None
            if response.status == 429 or response.status >= 500:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                raise TransientError(f"HTTP {response.status}", retry_after=retry_after, status=response.status)
            self._raise_for_rejection(response)
            return response

        return await call_with_retries(once, policy=self.policy, provider=self.display_name, describe=describe)

    async def write(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpResponse:
        """A non-idempotent request: sent once, never retried here."""
        describe = f"{method} {path}"
        try:
            response = await self._send(method, path, params=params, json_body=json_body, headers=headers)
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # The connection was never established: the request surely did not arrive.
            raise ProviderUnavailable(
                f"{self.display_name} could not be reached ({describe}: {self._network_reason(exc)}); nothing was changed.",
                provider=self.display_name,
            ) from None
        except TimeoutError:
            raise AmbiguousTriggerError(
                f"{self.display_name} did not answer {describe} within {self.policy.timeout:g}s: "
                "the request may have been applied.",
                provider=self.display_name,
            ) from None
        except aiohttp.ClientError as exc:
            raise AmbiguousTriggerError(
                f"{self.display_name} dropped the connection during {describe} ({self._network_reason(exc)}): "
                "the request may have been applied.",
                provider=self.display_name,
            ) from None
        if response.status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            wait = f" for {retry_after:.0f}s" if retry_after is not None else ""
            raise ProviderUnavailable(
                f"{self.display_name} is rate limiting us{wait} ({describe}); nothing was changed.",
                provider=self.display_name,
                retry_after=retry_after,
            )
        if response.status >= 500:
            message, _ = provider_error_message(response.data, response.text)
            raise AmbiguousTriggerError(
                f"{self.display_name} answered HTTP {response.status} to {describe}"
                + (f" (“{self.scrub(message)}”)" if message else "")
                + ": the request may have been applied.",
                provider=self.display_name,
            )
        self._raise_for_rejection(response)
        return response

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    # -- internals

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None,
        json_body: Any,
        headers: Mapping[str, str] | None,
    ) -> HttpResponse:
        merged = {**self._headers, **(headers or {})}
        timeout = aiohttp.ClientTimeout(total=self.policy.timeout, connect=self.policy.connect_timeout)
        async with self.session.request(
            method,
            f"{self.base_url}{path}",
            params=params,
            json=json_body,
            headers=merged,
            timeout=timeout,
            allow_redirects=False,
        ) as resp:
            text = await resp.text()
            data: Any = None
            if text:
                try:
                    data = json.loads(text)
                except ValueError:
                    data = None
            return HttpResponse(resp.status, {k: v for k, v in resp.headers.items()}, data, text)

    def _raise_for_rejection(self, response: HttpResponse) -> None:
        if response.status < 400:
            return
        message, code = provider_error_message(response.data, response.text)
        message = self.scrub(message) if message else None
        raise ProviderRejected(
            rejection_message(self.display_name, response.status, message, token_env=self.token_env),
            response.status,
            provider=self.display_name,
            provider_message=message,
            code=code,
        )

    def _network_reason(self, exc: BaseException) -> str:
        # aiohttp's messages name host and port, never headers; scrub anyway.
        detail = str(exc) or type(exc).__name__
        return self.scrub(f"{type(exc).__name__}: {detail}" if str(exc) else detail)
