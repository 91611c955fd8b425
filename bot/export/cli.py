"""``firebreak export INC-n --format md|json|html|github [--output FILE]``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sqlalchemy.exc import DBAPIError, OperationalError

from bot.config import Settings
from bot.db.engine import create_engine, create_sessionmaker
from bot.export import pipeline
from bot.export.github import GitHubExportError
from bot.export.names import Names, SlackNames
from bot.export.web import parse_key
from bot.incidents.service import IncidentNotFound


def _playbooks(settings: Settings):
    from bot.playbooks.loader import PlaybookError, load_playbooks

    try:
        return load_playbooks(Path(settings.playbooks_dir))
    except (PlaybookError, OSError) as exc:
        print(f"warning: playbooks not loaded, severity targets unknown: {exc}".splitlines()[0],
              file=sys.stderr)
        return None


def _names(settings: Settings) -> Names:
    if settings.slack_bot_token is None:
        return Names()  # ids are shown as they are
    from bot.slack.client import make_slack_client

    return SlackNames(make_slack_client(settings))


async def run_export(settings: Settings, args: argparse.Namespace) -> int:
    number = parse_key(args.incident)
    if number is None:
        print(f"error: {args.incident!r} is not an incident; write it like INC-12", file=sys.stderr)
        return 2
    engine = create_engine(settings.database_url)
    exporter = pipeline.Exporter(sessions=create_sessionmaker(engine), settings=settings,
                                 names=_names(settings), playbooks=_playbooks(settings))
    try:
        if args.format == "github":
            ref = await pipeline.publish_github(exporter, number=number)
            print(f"{'Opened' if ref.created else 'Updated'} {ref.repo}#{ref.number}: {ref.url}")
            return 0
        if args.output:
            target = Path(args.output)
            partial = target.with_name(target.name + ".partial")
            try:
                with partial.open("wb") as out:
                    await pipeline.write(exporter, number=number, fmt=args.format, sink=out.write)
                os.replace(partial, target)
            finally:
                partial.unlink(missing_ok=True)
            print(f"wrote {target}", file=sys.stderr)
        else:
            out = sys.stdout.buffer

            def sink(block: bytes) -> None:
                out.write(block)

            await pipeline.write(exporter, number=number, fmt=args.format, sink=sink)
            out.flush()
        return 0
    except IncidentNotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except GitHubExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (OperationalError, DBAPIError) as exc:
        print(f"error: the database at DATABASE_URL is unreachable or not migrated "
              f"(run `firebreak db upgrade`): {type(exc).__name__}", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()
