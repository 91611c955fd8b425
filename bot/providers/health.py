"""Post-rollback health check: the service must answer ``expect_status``
continuously for ``settle``, sampled every ``interval``.

The number of samples is fixed by ``settle`` and ``interval`` (one at the start,
then one per interval), and waits go through the injected clock, so a test with
:class:`bot.clock.ManualClock` never waits. Failures during the first ``grace``
seconds (the service may still be warming up) restart the count; after that the
first failure ends the check as unhealthy.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp

from bot.clock import Clock


@dataclass(frozen=True, slots=True)
class HealthSample:
    at: datetime
    status: int | None  # None when there was no answer
    ok: bool
    elapsed_ms: float
    error: str | None = None

    def describe(self) -> str:
        if self.status is None:
            return f"no answer ({self.error})"
        return f"HTTP {self.status}"


@dataclass(frozen=True, slots=True)
class HealthResult:
    healthy: bool
    url: str
    expect_status: int
    samples: tuple[HealthSample, ...]
    first_failure: HealthSample | None

    @property
    def detail(self) -> str:
        if self.healthy:
            span = (self.samples[-1].at - self.samples[0].at).total_seconds() if self.samples else 0.0
            return f"{self.url} answered {self.expect_status} to {len(self.samples)} checks over {span:.0f}s."
        failure = self.first_failure.describe() if self.first_failure else "no check"
        return f"{self.url} is unhealthy: {failure} (expected {self.expect_status}) after {len(self.samples)} checks."


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


async def check_health(
    http: aiohttp.ClientSession,
    *,
    url: str,
    expect_status: int = 200,
    timeout: float | timedelta = 5.0,
    settle: float | timedelta = 120.0,
    clock: Clock,
    interval: float | timedelta = 5.0,
    grace: float | timedelta = 0.0,
) -> HealthResult:
    timeout_s, settle_s, interval_s, grace_s = (_seconds(v) for v in (timeout, settle, interval, grace))
    if interval_s <= 0:
        raise ValueError("interval must be positive")
    required = math.floor(settle_s / interval_s) + 1  # consecutive good answers
    grace_samples = math.ceil(grace_s / interval_s) if grace_s > 0 else 0
    samples: list[HealthSample] = []
    first_failure: HealthSample | None = None
    streak = 0
    while True:
        sample = await _sample(http, url, expect_status, timeout_s, clock)
        samples.append(sample)
        if sample.ok:
            streak += 1
            if streak >= required:
                return HealthResult(True, url, expect_status, tuple(samples), first_failure)
        else:
            first_failure = first_failure or sample
            streak = 0
            if len(samples) > grace_samples:
                return HealthResult(False, url, expect_status, tuple(samples), first_failure)
        await clock.sleep(interval_s)


async def _sample(http: aiohttp.ClientSession, url: str, expect: int, timeout: float, clock: Clock) -> HealthSample:
    at = clock.now()
    started = time.monotonic()
    try:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=timeout), allow_redirects=False) as response:
            await response.read()
            status = response.status
    except TimeoutError:
        return HealthSample(at, None, False, (time.monotonic() - started) * 1000, f"timed out after {timeout:g}s")
    except aiohttp.ClientError as exc:
        return HealthSample(at, None, False, (time.monotonic() - started) * 1000, type(exc).__name__)
    return HealthSample(at, status, status == expect, (time.monotonic() - started) * 1000)
