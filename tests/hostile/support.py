"""Helpers of the hostile-input tests: what "handled" means, checked after each request.

A request is handled when Slack got an answer below 500, the work after the ack ended
without an exception (``rt.background.failed`` unchanged), and nothing was logged at
ERROR or with a traceback: no "unexpected error", no Bolt listener error, no aiohttp
"Error handling request".
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

import hypothesis
from hypothesis.control import currently_in_test_context
from sqlalchemy import func, select

from tests.support.bed import GENERAL, REPORTER, Bed, Sent

# Slack ids the emulator's sample workspace knows, and some it does not.
KNOWN_USERS = [REPORTER, "U0G9QF9C6", "U1H2J3K4L"]
KNOWN_CHANNELS = [GENERAL, "C0ANNOUNCE"]


class Records(logging.Handler):
    """Every log record while installed (root logger, everything at WARNING and above)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def problems(self) -> list[str]:
        found = []
        for record in self.records:
            message = record.getMessage()
            if (record.levelno >= logging.ERROR or record.exc_info or "unexpected error" in message
                    or "Traceback" in message):
                found.append(f"{record.levelname} {record.name}: {message[:300]}"
                             + (f" [{record.exc_info[0].__name__}: {record.exc_info[1]}]"
                                if record.exc_info and record.exc_info[1] else ""))
        return found


@contextmanager
def watching_logs() -> Iterator[Records]:
    handler = Records()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


class Handled:
    """Checks that every request in between was handled (see the module docstring)."""

    def __init__(self, bed: Bed, records: Records) -> None:
        self.bed = bed
        self.records = records
        self.failed = bed.rt.background.failed
        self.replies = len(bed.emu.response_url_posts)

    async def check(self, sent: Sent, what: Any) -> None:
        await self.bed.idle()  # the work after the ack is done (replies included)
        replies = self.bed.emu.response_url_posts
        last = replies[-1].payload.get("text", "") if len(replies) > self.replies else ""
        self.replies = len(replies)
        if currently_in_test_context():
            hypothesis.event(f"HTTP {sent.status}" + (f", reply: {last[:40]!r}" if last else ""))
        assert sent.status < 500, (sent.status, sent.body[:300], repr(what)[:500])
        problems = self.records.problems()
        failed = self.bed.rt.background.failed - self.failed
        self.records.records.clear()
        self.failed = self.bed.rt.background.failed
        assert not problems and not failed, (problems, failed, repr(what)[:800])
        assert "Something went wrong" not in sent.body, (sent.body, repr(what)[:500])
        for post in self.bed.emu.response_url_posts[-3:]:
            assert "Something went wrong" not in json.dumps(post.payload), (post.payload, repr(what)[:500])


def form(fields: dict[str, Any]) -> str:
    return urlencode({k: v for k, v in fields.items() if v is not None})


async def post_form(bed: Bed, fields: dict[str, Any], **kwargs: Any) -> Sent:
    return await bed.post(form(fields), content_type="application/x-www-form-urlencoded", **kwargs)


async def post_payload(bed: Bed, payload: Any, **kwargs: Any) -> Sent:
    return await bed.post(urlencode({"payload": json.dumps(payload)}),
                          content_type="application/x-www-form-urlencoded", **kwargs)


async def count_rows(bed: Bed, *models: Any) -> dict[str, int]:
    async with bed.rt.sessions() as session:
        return {model.__tablename__: (await session.execute(select(func.count()).select_from(model))).scalar()
                for model in models}
