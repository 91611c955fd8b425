"""Discovery of each concern's wiring, so that adding one needs no edit elsewhere.

A concern ``bot/<name>/`` may have an ``install.py`` with either or both of:

- ``install(rt: Runtime) -> None``: register job handlers, lifecycle subscribers…
- ``install_routes(app: web.Application, rt: Runtime) -> None``: add web routes.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import bot


def concern_installers() -> list[ModuleType]:
    found = []
    for module in sorted(pkgutil.iter_modules(bot.__path__), key=lambda m: m.name):
        if not module.ispkg:
            continue
        try:
            found.append(importlib.import_module(f"bot.{module.name}.install"))
        except ModuleNotFoundError as exc:
            if exc.name != f"bot.{module.name}.install":
                raise
    return found
