"""PageRequest, target parsing, truncation and the retry helper's pieces."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.pagers.base import (
    PageRequest,
    PagerError,
    incident_dedup_key,
    split_target,
    truncate,
)
from bot.pagers.http import RetryPolicy, parse_retry_after
from bot.playbooks.models import Severity
from tests.pagers.conftest import make_request


def test_dedup_key_is_derived_from_the_incident() -> None:
    assert incident_dedup_key(12) == "firebreak-INC-12"
    request = make_request(incident_number=12, level=3, repeat=1)
    assert request.dedup_key == "firebreak-INC-12" and request.incident_ref == "INC-12"


def test_request_validation_and_normalisation() -> None:
    request = make_request(severity="P0", timestamp=datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=-5))))
    assert request.severity is Severity.P0
    assert request.timestamp == datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    assert request.timestamp.tzinfo == UTC
    for bad in ({"severity": "P7"}, {"incident_number": 0}, {"level": -1}):
        with pytest.raises(ValueError):
            make_request(**bad)


def test_channel_url() -> None:
    assert make_request(channel_id="C1").channel_url == "https://slack.com/app_redirect?channel=C1"
    assert make_request(channel_id="C1", channel_link="https://x/archives/C1").channel_url == "https://x/archives/C1"
    assert make_request(channel_id=None).channel_url is None


@pytest.mark.parametrize(
    ("target", "expected"),
    [("user:U1", ("user", "U1")), ("pagerduty:default", ("pagerduty", "default")), ("Opsgenie:Platform Team", ("opsgenie", "Platform Team"))],
)
def test_split_target(target: str, expected: tuple[str, str]) -> None:
    assert split_target(target) == expected


@pytest.mark.parametrize("target", ["", "user", "user:", "sms:+1555", "oncall:backend:primary"])
def test_split_target_refuses(target: str) -> None:
    with pytest.raises(PagerError) as caught:
        split_target(target)
    assert not caught.value.transient and caught.value.target == target


def test_truncate() -> None:
    assert truncate("abc", 3) == "abc"
    assert truncate("abcdef", 4) == "abc…"
    assert truncate("abcdef", 4, ellipsis="") == "abcd"
    assert len(truncate("x" * 2000, 1024)) == 1024


def test_parse_retry_after() -> None:
    now = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("Mon, 02 Mar 2026 14:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Mon, 02 Mar 2026 13:00:00 GMT", now=now) == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None


def test_retry_policy_is_checked() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(request_timeout=0)


def test_page_request_is_immutable() -> None:
    request: PageRequest = make_request()
    with pytest.raises(AttributeError):
        request.level = 2  # type: ignore[misc]
