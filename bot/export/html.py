"""HTML: the exported post-mortem page and the web pages, from Jinja2 templates.

The environment is asynchronous so that a template can loop over an async
iterator of timeline rows and stream its output (``generate_async``).
Autoescaping is on: event text is people's input.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from bot.export.document import EventRow, Postmortem


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(
        loader=PackageLoader("bot.export", "templates"),
        autoescape=select_autoescape(["html"]),
        enable_async=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def page(name: str, **context: Any) -> AsyncIterator[str]:
    """Stream the template ``name`` (``base_path`` defaults to the site root)."""
    context.setdefault("base_path", "")
    return environment().get_template(name).generate_async(**context)


async def render(name: str, **context: Any) -> str:
    return "".join([chunk async for chunk in page(name, **context)])


def postmortem_page(doc: Postmortem, rows: AsyncIterator[EventRow] | Iterable[EventRow], *,
                    timeline_svg: str) -> AsyncIterator[str]:
    """The standalone HTML post-mortem (``export html``), every event included."""
    return page("postmortem.html", doc=doc, rows=rows, timeline_svg=timeline_svg)
