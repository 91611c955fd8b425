"""Each listener kind registers its own listeners, then every module beside them."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable

from slack_bolt.async_app import AsyncApp

from bot.runtime import Runtime


def register_submodules(package_name: str, package_path: Iterable[str], app: AsyncApp,
                        rt: Runtime) -> None:
    for module in sorted(pkgutil.iter_modules(package_path), key=lambda m: m.name):
        loaded = importlib.import_module(f"{package_name}.{module.name}")
        if hasattr(loaded, "register"):
            loaded.register(app, rt)
