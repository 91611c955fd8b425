"""The bot's web side over real HTTP: the test bed with WEB_AUTH_TOKEN set."""

from __future__ import annotations

import aiohttp
import pytest

from tests.support.bed import start_bed, stop_bed

TOKEN = "web-token-0123456789abcdef"


@pytest.fixture
async def web_bed(database_url):
    bed = await start_bed(database_url, settings_overrides={"web_auth_token": TOKEN})
    try:
        yield bed
    finally:
        await stop_bed(bed)


@pytest.fixture
async def browser_like():
    """A client that keeps cookies for 127.0.0.1, as a browser does."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


def url(bed, path: str) -> str:
    return str(bed.server.make_url(path))


def bearer() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}
