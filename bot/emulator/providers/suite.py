"""All five provider fakes together, for ``firebreak demo`` and end-to-end tests.

    async with ProviderFakes() as fakes:
        settings = load_settings(**fakes.settings_overrides())
        for service in fakes.services():        # one seeded, broken service per provider
            print(service["name"], service["provider"], service["health_url"])
"""

from __future__ import annotations

from typing import Any, Self

from bot.clock import Clock
from bot.emulator.providers._server import FakeProviderServer
from bot.emulator.providers.github import GitHubFake
from bot.emulator.providers.heroku import HerokuFake
from bot.emulator.providers.railway import RailwayFake
from bot.emulator.providers.render import RenderFake
from bot.emulator.providers.vercel import VercelFake


class ProviderFakes:
    def __init__(self, *, clock: Clock | None = None, token: str = "demo-token", host: str = "127.0.0.1") -> None:
        self.host = host
        self.token = token
        self.render = RenderFake(clock=clock, token=token)
        self.railway = RailwayFake(clock=clock, token=token)
        self.vercel = VercelFake(clock=clock, token=token)
        self.heroku = HerokuFake(clock=clock, token=token)
        self.github = GitHubFake(clock=clock, token=token)

    @property
    def all(self) -> tuple[FakeProviderServer, ...]:
        return (self.render, self.railway, self.vercel, self.heroku, self.github)

    async def start(self) -> ProviderFakes:
        started: list[FakeProviderServer] = []
        try:
            for fake in self.all:
                await fake.start(self.host)
                started.append(fake)
        except BaseException:
            for fake in started:
                await fake.stop()
            raise
        return self

    async def stop(self) -> None:
        for fake in self.all:
            await fake.stop()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def settings_overrides(self) -> dict[str, str]:
        """Keyword arguments for ``load_settings`` (lower-case names of SPEC §3's variables)."""
        return {
            "render_api_url": self.render.api_url,
            "render_api_key": self.token,
            "railway_api_url": self.railway.api_url,
            "railway_api_token": self.token,
            "vercel_api_url": self.vercel.api_url,
            "vercel_token": self.token,
            "heroku_api_url": self.heroku.api_url,
            "heroku_api_key": self.token,
            "github_api_url": self.github.api_url,
            "github_token": self.token,
        }

    def environment(self) -> dict[str, str]:
        """The same as environment variables (RENDER_API_URL=...)."""
        return {key.upper(): value for key, value in self.settings_overrides().items()}

    def services(self) -> list[dict[str, Any]]:
        """One seeded service per provider: a playbook ``provider:`` block and its health URL."""
        render = next(iter(self.render.seeded.values()))
        railway_seed = next(iter(self.railway.seeded.values()))
        railway = self.railway.services[railway_seed.key]
        vercel = next(iter(self.vercel.seeded.values()))
        heroku = next(iter(self.heroku.seeded.values()))
        github = next(iter(self.github.seeded.values()))
        return [
            {"name": "api", "provider": {"type": "render", "service_id": render.key},
             "health_url": self.render.health_url(render.key), "seeded": render},
            {"name": "worker", "provider": {"type": "railway", "project_id": railway.project_id,
                                            "environment_id": railway.environment_id, "service_id": railway.service_id},
             "health_url": self.railway.health_url(railway.service_id), "seeded": railway_seed},
            {"name": "web", "provider": {"type": "vercel", "project_id": vercel.key},
             "health_url": self.vercel.health_url(vercel.key), "seeded": vercel},
            {"name": "billing", "provider": {"type": "heroku", "app": heroku.key},
             "health_url": self.heroku.health_url(heroku.key), "seeded": heroku},
            {"name": "shop", "provider": {"type": "github-actions", "repo": github.key, "workflow": "rollback.yml",
                                          "ref": "main", "environment": "production"},
             "health_url": self.github.health_url(github.key), "seeded": github},
        ]
