"""Rollback providers: one module per hosting provider behind one small protocol.

    provider = build_provider(service.provider.type, settings, http_session, clock)
    plan = await provider.plan(service.provider, to=None)
    handle = await provider.trigger(service.provider, plan, idempotency_key=key)
    progress = await provider.poll(service.provider, handle)

See :mod:`bot.providers.base` for the data types and errors, and
:mod:`bot.providers.http` for the retry policy of the HTTP edge.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from bot.clock import Clock
from bot.providers.base import (
    AmbiguousTriggerError,
    Deploy,
    InvalidTarget,
    ProviderError,
    ProviderNotConfigured,
    ProviderRejected,
    ProviderUnavailable,
    RollbackHandle,
    RollbackPlan,
    RollbackProgress,
    RollbackProvider,
    RollbackState,
)
from bot.providers.github_actions import GithubActionsProvider
from bot.providers.heroku import HerokuProvider
from bot.providers.http import RetryPolicy
from bot.providers.railway import RailwayProvider
from bot.providers.render import RenderProvider
from bot.providers.vercel import VercelProvider

PROVIDERS: dict[str, type] = {
    RenderProvider.type: RenderProvider,
    RailwayProvider.type: RailwayProvider,
    VercelProvider.type: VercelProvider,
    HerokuProvider.type: HerokuProvider,
    GithubActionsProvider.type: GithubActionsProvider,
}
"""Provider classes by the playbook's ``provider.type``."""


def redeploy_of(provider: str, ids: Mapping[str, Any], target_id: str) -> str | None:
    """The new deploy ``provider`` made to put ``target_id`` back live (Render and Railway
    redeploy the target under a new id), from a rollback's ``provider_ids``; else None."""
    key = getattr(PROVIDERS.get(provider), "redeploy_id_key", None)
    value = ids.get(key) if key else None
    return str(value) if value and str(value) != target_id else None


def build_provider(
    type: str,
    settings: Any,
    http_session: aiohttp.ClientSession,
    clock: Clock,
    *,
    retry: RetryPolicy | None = None,
) -> RollbackProvider:
    """The provider for a playbook ``provider.type``, configured from Settings.

    Raises :class:`ProviderNotConfigured` for an unknown type or a missing token.
    """
    cls = PROVIDERS.get(type)
    if cls is None:
        known = ", ".join(sorted(PROVIDERS))
        raise ProviderNotConfigured(f"unknown provider type {type!r} (known: {known})")
    provider: RollbackProvider = cls.from_settings(settings, http_session, clock, retry)
    return provider


__all__ = [
    "PROVIDERS",
    "AmbiguousTriggerError",
    "Deploy",
    "InvalidTarget",
    "ProviderError",
    "ProviderNotConfigured",
    "ProviderRejected",
    "ProviderUnavailable",
    "RetryPolicy",
    "RollbackHandle",
    "RollbackPlan",
    "RollbackProgress",
    "RollbackProvider",
    "RollbackState",
    "build_provider",
]
