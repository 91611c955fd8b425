"""Everything ``firebreak demo`` runs, started and stopped as one: :class:`DemoStack`.

On 127.0.0.1 only:

- the simulated providers and pagers (:mod:`bot.demo.simulated`), seeded from the playbooks;
- the Slack emulator (:mod:`bot.emulator`) with the sample team;
- the bot itself, built by ``handlers.app.create_web_app`` exactly as ``firebreak serve`` builds
  it (HTTP mode, Slack at ``/slack/events``, workers in-process), on SQLite in the data folder
  with the demo's copy of the playbooks (:mod:`bot.demo.playbooks`);
- the web console (:mod:`bot.demo.console`), which signs what a person does and delivers it to
  the bot (:mod:`bot.demo.delivery`).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from aiohttp import web

from bot.config import Settings
from bot.demo.console import BotLinks, Console, create_console_app
from bot.demo.delivery import SlackDelivery
from bot.demo.playbooks import (
    DemoDataError,
    find_sample_playbooks,
    known_user_ids,
    read_services,
    write_demo_playbooks,
)
from bot.demo.simulated import PAGERDUTY_ROUTING_KEY, SimulatedWorld
from bot.emulator import SlackEmulator

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
BOT_TOKEN = "xoxb-firebreak-demo-0000000000"
SIGNING_SECRET = "firebreak-demo-signing-secret-0000"
ANNOUNCE_CHANNEL = "C0ANNOUNCE"
DEFAULT_USER = "U024BE7LH"  # ava: on call, owner of every sample service
DEFAULT_CHANNEL = "C0GENERAL"
DB_NAME = "firebreak.db"
# People the playbooks name who are not in the emulator's sample team (the managers' rotation).
EXTRA_PEOPLE = (("gia", "Gia Moreau", "Engineering manager"), ("hal", "Hal Ortiz", "Engineering manager"),
                ("ivy", "Ivy Chen", "Engineer"), ("jon", "Jon Berg", "Engineer"))


class DemoStartError(Exception):
    """The demo cannot start; the message says why, for a person."""


@dataclass
class DemoStack:
    data_dir: Path
    console_port: int = 8400
    bot_port: int | None = None  # default: console_port + 1, or any free port if that is taken
    worker_poll_seconds: float = 0.2
    display_timezone: str = "America/New_York"
    web_auth_token: str = field(default_factory=lambda: secrets.token_urlsafe(18))

    world: SimulatedWorld | None = None
    emulator: SlackEmulator | None = None
    delivery: SlackDelivery | None = None
    console: Console | None = None
    settings: Settings | None = None
    bot_app: web.Application | None = None
    bot_url: str = ""
    console_url: str = ""
    _runners: list[web.AppRunner] = field(default_factory=list)

    # -- start ------------------------------------------------------------------------------

    async def start(self) -> DemoStack:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def _start(self) -> None:
        data_dir = self.data_dir.resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        source = find_sample_playbooks()
        services = read_services(source)

        self.world = SimulatedWorld()
        await self.world.start()
        self.world.seed({name: s.get("provider") or {} for name, s in services.items()})
        playbooks_dir = write_demo_playbooks(
            source, data_dir / "playbooks", services,
            {name: sim.health_url for name, sim in self.world.services.items()})

        self.emulator = SlackEmulator(bot_token=BOT_TOKEN, team_name="Firebreak Demo")
        self._add_playbook_people(known_user_ids(source))
        await self.emulator.start(HOST, 0)

        database_url = await self._fresh_database(data_dir)
        self.settings = self._bot_settings(database_url, playbooks_dir)
        await self._start_bot()

        self.delivery = SlackDelivery(self.emulator, events_url=f"{self.bot_url}/slack/events",
                                      signing_secret=SIGNING_SECRET)
        self.delivery.attach()
        self.console = Console(
            emulator=self.emulator, delivery=self.delivery, world=self.world,
            links=BotLinks(self.bot_url, self.web_auth_token, self.bot_app),
            incident_prefix=self.settings.incident_channel_prefix, default_user=DEFAULT_USER,
            default_channel=DEFAULT_CHANNEL, announce_channel=ANNOUNCE_CHANNEL)
        runner = await self._serve(create_console_app(self.console), self.console_port,
                                   what="the console", shutdown_timeout=1.0)
        self.console_url = f"http://{HOST}:{runner.addresses[0][1]}/"

    def _add_playbook_people(self, user_ids: set[str]) -> None:
        assert self.emulator is not None
        ws = self.emulator.workspace
        spare = iter(EXTRA_PEOPLE)
        for user_id in sorted(user_ids - set(ws.users)):
            name, real_name, title = next(spare, (user_id.lower(), user_id, ""))
            self.emulator.add_user(name, user_id=user_id, real_name=real_name, title=title,
                                   tz="America/New_York")
            for channel in ws.channels.values():  # everyone is in the sample team's channels
                if not channel.is_im and user_id not in channel.members:
                    channel.members.append(user_id)

    async def _fresh_database(self, data_dir: Path) -> str:
        """A new SQLite database at every start: the emulated workspace starts empty too."""
        for suffix in ("", "-journal", "-wal", "-shm"):
            path = data_dir / f"{DB_NAME}{suffix}"
            if path.exists():
                path.unlink()
        url = f"sqlite+aiosqlite:///{data_dir / DB_NAME}"
        from bot.db.migrate import upgrade

        await asyncio.to_thread(upgrade, url)
        return url

    def _bot_settings(self, database_url: str, playbooks_dir: Path) -> Settings:
        assert self.emulator is not None and self.world is not None
        # The PagerDuty routing keys are read from the environment (PAGERDUTY_ROUTING_KEY_<NAME>).
        os.environ["PAGERDUTY_ROUTING_KEY_DEFAULT"] = PAGERDUTY_ROUTING_KEY
        values: dict[str, Any] = dict(
            slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET, slack_app_token=None,
            slack_api_url=self.emulator.api_url, database_url=database_url,
            playbooks_dir=str(playbooks_dir), host=HOST, announce_channel=ANNOUNCE_CHANNEL,
            incident_channel_prefix="inc", display_timezone=self.display_timezone,
            web_auth_token=self.web_auth_token, postmortem_github_repo=None,
            run_workers=True, worker_poll_seconds=self.worker_poll_seconds,
            **self.world.settings(),
        )
        return Settings.from_values(**values)

    async def _start_bot(self) -> None:
        from handlers.app import create_web_app  # the same application as `firebreak serve`

        assert self.settings is not None
        if self.bot_port is not None:
            ports = [self.bot_port]
        elif self.console_port:
            ports = [self.console_port + 1, _free_port()]
        else:
            ports = [_free_port()]
        for attempt, port in enumerate(ports):
            self.bot_url = f"http://{HOST}:{port}"
            self.settings = self.settings.model_copy(update={"public_base_url": self.bot_url})
            self.bot_app = create_web_app(self.settings)
            try:
                await self._serve(self.bot_app, port, what="the bot", shutdown_timeout=2.0)
                return
            except DemoStartError:
                if attempt == len(ports) - 1:
                    raise

    async def _serve(self, app: web.Application, port: int, *, what: str,
                     shutdown_timeout: float) -> web.AppRunner:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout,
                               handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, HOST, port).start()
        except OSError as exc:
            await runner.cleanup()
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise DemoStartError(f"port {port} on {HOST} is not available for {what}: "
                                     f"{exc.strerror}. Choose another with --port.") from None
            raise
        self._runners.append(runner)
        return runner

    # -- stop -------------------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop everything that started, newest first; never raises."""
        if self.console is not None:
            self.console.broker.close()
        for runner in reversed(self._runners):
            try:
                await runner.cleanup()
            except Exception:
                log.exception("stopping a server failed")
        self._runners.clear()
        if self.delivery is not None:
            await self.delivery.close()
        if self.emulator is not None:
            try:
                await self.emulator.stop()
            except Exception:
                log.exception("stopping the Slack emulator failed")
        if self.world is not None:
            await self.world.stop()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


__all__ = ["DemoDataError", "DemoStack", "DemoStartError"]
