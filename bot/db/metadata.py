"""Import every table module so ``SQLModel.metadata`` is complete (Alembic, tests).

Each concern keeps its tables in ``bot/<concern>/models.py``; they are found here
without a list to maintain.
"""

from __future__ import annotations

import importlib
import pkgutil

from sqlmodel import SQLModel

import bot


def load_all_models():
    for module in pkgutil.iter_modules(bot.__path__):
        if module.ispkg:
            try:
                importlib.import_module(f"bot.{module.name}.models")
            except ModuleNotFoundError as exc:
                if exc.name != f"bot.{module.name}.models":
                    raise
    return SQLModel.metadata
