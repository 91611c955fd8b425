"""``/metrics``: open (no token), Prometheus or OpenMetrics text by content negotiation."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder

from bot.metrics.collector import FirebreakCollector
from bot.runtime import Runtime

REGISTRY = "metrics.registry"
COLLECTOR = "metrics.collector"


def registry_for(rt: Runtime) -> CollectorRegistry:
    """The runtime's registry (one per runtime, so that tests and replicas never share)."""
    registry = rt.extras.get(REGISTRY)
    if not isinstance(registry, CollectorRegistry):
        registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        collector = FirebreakCollector(rt.sessions)
        registry.register(collector)
        rt.extras[REGISTRY] = registry
        rt.extras[COLLECTOR] = collector
    return registry


def install(rt: Runtime) -> None:
    registry_for(rt)


def install_routes(app: web.Application, rt: Runtime) -> None:
    async def metrics(request: web.Request) -> web.Response:
        registry = registry_for(rt)
        collector = rt.extras[COLLECTOR]
        assert isinstance(collector, FirebreakCollector)
        await collector.refresh()
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        body = encoder(registry)
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    app.router.add_get("/metrics", metrics)
