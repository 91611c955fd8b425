"""Local fakes of the rollback providers' APIs, for tests and ``firebreak demo``.

Each fake is an aiohttp app on 127.0.0.1 (machinery in
:mod:`bot.emulator.providers._server`): constructed with ``token=``, ``clock=``,
``validator=`` and ``seed=``; started with ``await fake.start()`` (or
``async with``) on a free port; ``fake.api_url`` is the base URL to configure,
``fake.faults.add(Fault.X, ...)`` injects faults, ``fake.requests`` records
every request (credentials redacted), and ``GET /health/<service>`` answers 500
while the seeded bad deploy is live, 200 once a rollback replaced it.

============  =================  ===================================================
fake          setting            seeded service (ids by role in ``fake.seeded[key]``)
============  =================  ===================================================
RenderFake    RENDER_API_URL     service ``srv-d0fakeapi0001`` (health alias ``api``)
RailwayFake   RAILWAY_API_URL    project/environment/service uuids (alias ``api``)
VercelFake    VERCEL_API_URL     project ``prj_fakeweb0001`` (alias ``web``)
HerokuFake    HEROKU_API_URL     app ``firebreak-demo-api`` (alias ``api``)
GitHubFake    GITHUB_API_URL     repo ``acme/shop``, workflow ``rollback.yml`` (alias ``shop``)
============  =================  ===================================================

:class:`ProviderFakes` starts all five and gives the matching settings.
"""

from bot.emulator.providers._server import (
    FakeProviderServer,
    Fault,
    FaultQueue,
    RecordedRequest,
    SeededService,
)
from bot.emulator.providers.github import GitHubFake
from bot.emulator.providers.heroku import HerokuFake
from bot.emulator.providers.railway import RailwayFake
from bot.emulator.providers.render import RenderFake
from bot.emulator.providers.suite import ProviderFakes
from bot.emulator.providers.vercel import VercelFake

__all__ = [
    "FakeProviderServer",
    "Fault",
    "FaultQueue",
    "GitHubFake",
    "HerokuFake",
    "ProviderFakes",
    "RailwayFake",
    "RecordedRequest",
    "RenderFake",
    "SeededService",
    "VercelFake",
]
