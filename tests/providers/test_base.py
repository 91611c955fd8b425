"""Data types, plan selection and the provider registry."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from bot.config import load_settings
from bot.providers import PROVIDERS, build_provider
from bot.providers.base import (
    Deploy,
    InvalidTarget,
    ProviderNotConfigured,
    RollbackHandle,
    RollbackPlan,
    RollbackProgress,
    RollbackProvider,
    RollbackState,
    choose_plan,
)

NOW = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


def deploy(id: str, *, live=False, target=False, age_h=1.0, status=None) -> Deploy:
    return Deploy(id, status or ("live" if live else "deactivated" if target else "build_failed"), live, target,
                  NOW - timedelta(hours=age_h), "abc1234def", "msg", "alice")


def test_json_round_trips():
    plan = RollbackPlan("render", deploy("d2", live=True), deploy("d1", target=True, age_h=5), ("note",))
    assert RollbackPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan
    handle = RollbackHandle("render", "d1", NOW, {"deploy_id": "d3", "n": 7}, "key")
    again = RollbackHandle.from_dict(json.loads(json.dumps(handle.to_dict())))
    assert again == handle and again.ids["n"] == "7"
    progress = RollbackProgress(RollbackState.LIVE, "done", {"deploy_id": "d3"}, "live")
    data = json.loads(json.dumps(progress.to_dict()))
    assert data["terminal"] is True and RollbackProgress.from_dict(data) == progress


def test_naive_times_are_taken_as_utc():
    naive = Deploy("d", "live", True, False, datetime(2026, 3, 2, 14, 0))
    assert naive.created_at.tzinfo is not None


def test_choose_plan_rules():
    deploys = [deploy("d4", live=True), deploy("d3", age_h=2), deploy("d2", target=True, age_h=3), deploy("d1", target=True, age_h=4)]
    assert choose_plan("x", deploys, to=None, where="svc").target.id == "d2"
    assert choose_plan("x", deploys, to="d1", where="svc").target.id == "d1"
    with pytest.raises(InvalidTarget, match="no live deploy"):
        choose_plan("x", deploys[1:], to=None, where="svc")
    with pytest.raises(InvalidTarget, match="no earlier deploy"):
        choose_plan("x", deploys[:2], to=None, where="svc")
    # a deactivated deploy NEWER than the live one (after an earlier rollback) is a valid explicit target
    newer = [deploy("d5", target=True, age_h=0.5), *deploys]
    assert choose_plan("x", newer, to="d5", where="svc").target.id == "d5"
    assert choose_plan("x", newer, to=None, where="svc").target.id == "d2"


async def test_build_provider_for_every_type(clock):
    settings = load_settings(
        render_api_key="r", railway_api_token="t", vercel_token="v", heroku_api_key="h", github_token="g",
    )
    async with aiohttp.ClientSession() as session:
        for kind in ("render", "railway", "vercel", "heroku", "github-actions"):
            provider = build_provider(kind, settings, session, clock)
            assert isinstance(provider, PROVIDERS[kind])
            assert isinstance(provider, RollbackProvider)
            assert provider.type == kind and provider.notes
        with pytest.raises(ProviderNotConfigured, match="unknown provider type"):
            build_provider("netlify", settings, session, clock)
        with pytest.raises(ProviderNotConfigured, match="RENDER_API_KEY"):
            build_provider("render", load_settings(render_api_key=None), session, clock)
