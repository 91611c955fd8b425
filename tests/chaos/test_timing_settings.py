"""The timing settings the chaos tests rely on reach the parts they tune."""

from __future__ import annotations

from datetime import timedelta

from bot.config import load_settings
from bot.rollback.flow import RollbackFlow
from bot.rollback.install import flow_of
from bot.runtime import build_runtime
from tests.support.bed import REPO


def _runtime(tmp_path, **overrides):
    settings = load_settings(_env_file=None, slack_bot_token="xoxb-timing-0123456789",
                             database_url=f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
                             playbooks_dir=str(REPO / "playbooks"), **overrides)
    return build_runtime(settings)


def test_defaults(tmp_path):
    rt = _runtime(tmp_path)
    assert rt.worker.lease == timedelta(minutes=2)
    flow = flow_of(rt)
    assert flow.progress_interval == RollbackFlow.progress_interval == timedelta(seconds=3)
    assert flow.slack_lease == RollbackFlow.slack_lease == timedelta(seconds=60)


def test_worker_lease_and_rollback_poll(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKER_LEASE_SECONDS", "7")
    monkeypatch.setenv("ROLLBACK_POLL_SECONDS", "0.25")
    rt = _runtime(tmp_path)
    assert rt.worker.lease == timedelta(seconds=7)
    flow = flow_of(rt)
    assert flow.progress_interval == timedelta(seconds=0.25)
    assert flow.slack_lease == timedelta(seconds=7)  # never longer than the job holding it
