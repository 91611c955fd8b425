"""The ``firebreak`` command (the composition root: it wires ``bot`` and ``handlers``)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys
from pathlib import Path

from bot.config import ConfigError, Settings, load_settings

log = logging.getLogger("firebreak")


def _configure_logging(settings: Settings) -> None:
    from bot.logging import configure_logging

    configure_logging(settings)


def cmd_db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    from bot.db.migrate import upgrade

    upgrade(settings.database_url)
    print("database is up to date")
    return 0


def cmd_playbooks_check(settings: Settings, args: argparse.Namespace) -> int:
    from bot.clock import SystemClock
    from bot.playbooks.check import parse_at, render_check_report
    from bot.playbooks.loader import PlaybookError, load_playbooks

    try:
        playbooks = load_playbooks(Path(settings.playbooks_dir))
        at = parse_at(args.at) if args.at else SystemClock().now()
    except (PlaybookError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    from bot.escalation.check import pagerduty_key_names, slack_group_resolver

    print(render_check_report(playbooks, at, resolve_group=slack_group_resolver(settings),
                              pagerduty_keys=pagerduty_key_names(settings)))
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from aiohttp import web

    from bot.db.migrate import upgrade
    from bot.playbooks.loader import PlaybookError
    from bot.web.app import server_options
    from handlers.app import create_web_app

    settings.require_for_serve()
    if settings.database_url.startswith("sqlite"):
        upgrade(settings.database_url)  # the embedded store migrates itself
    try:
        app = create_web_app(settings)
    except PlaybookError as exc:
        raise ConfigError(f"invalid playbooks: {exc}") from None
    # Keep the long-lived start-up objects (Bolt, SQLAlchemy, playbooks) out of the cyclic
    # collector's way: its full passes over them paused acks for 100-250 ms under load.
    gc.collect()
    gc.freeze()
    log.info("Firebreak listening on %s:%s (%s mode)", settings.host, settings.port,
             "Socket" if settings.socket_mode else "HTTP")
    web.run_app(app, host=settings.host, port=settings.port, print=None, **server_options(settings))
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    try:
        from bot.demo import run_demo
    except ImportError:
        print(DEMO_PLAN)
        return 0
    return run_demo(args)


DEMO_PLAN = """firebreak demo — coming with the demo issue. It will start, on 127.0.0.1 only:
  • the bot (same code as `firebreak serve`) on SQLite in ./demo-data with the sample playbooks/
  • a local Slack-compatible emulator with a web console to type /incident and /rollback
  • simulated Render, Railway, Vercel, Heroku, GitHub and PagerDuty endpoints
Until then: `firebreak playbooks check` and the test suite show what works."""


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    try:
        from bot.export.cli import run_export
    except ImportError:
        print("export is not available in this build", file=sys.stderr)
        return 2
    return asyncio.run(run_export(settings, args))


def cmd_slack_manifest(settings: Settings, args: argparse.Namespace) -> int:
    from bot.slack.manifest import manifest_yaml

    if not args.url and not args.socket_mode:
        print("firebreak: give --url https://<your host> (Slack sends requests to <url>/slack/events), "
              "or --socket-mode", file=sys.stderr)
        return 2
    try:
        print(manifest_yaml(args.url, socket_mode=args.socket_mode), end="")
    except ValueError as exc:
        print(f"firebreak: {exc}", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="firebreak", description="Incident and rollback bot for Slack")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the bot (HTTP on $PORT, or Socket Mode)").set_defaults(func=cmd_serve)
    demo = sub.add_parser("demo", help="the whole product on this machine, no Slack account needed")
    demo.add_argument("--port", type=int, default=8400, help="port of the web console")
    demo.add_argument("--data-dir", default="./demo-data")
    demo.add_argument("--no-browser", action="store_true")
    demo.set_defaults(func=cmd_demo)
    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply migrations").set_defaults(func=cmd_db_upgrade)
    playbooks = sub.add_parser("playbooks", help="playbook tools")
    pb_sub = playbooks.add_subparsers(dest="playbooks_command", required=True)
    check = pb_sub.add_parser("check", help="validate playbooks and show who would be paged")
    check.add_argument("--at", help="ISO 8601 time, or 'YYYY-MM-DDTHH:MM Area/City'")
    check.set_defaults(func=cmd_playbooks_check)
    slack = sub.add_parser("slack", help="the Slack app")
    slack_sub = slack.add_subparsers(dest="slack_command", required=True)
    app_manifest = slack_sub.add_parser(
        "manifest", help="print the Slack app manifest: create the app from it at api.slack.com/apps")
    app_manifest.add_argument("--url", help="Firebreak's public https URL (Slack sends requests to <url>/slack/events)")
    app_manifest.add_argument("--socket-mode", action="store_true",
                              help="receive Slack's requests over Socket Mode (SLACK_APP_TOKEN) instead of HTTP")
    app_manifest.set_defaults(func=cmd_slack_manifest)
    export = sub.add_parser("export", help="export an incident's post-mortem")
    export.add_argument("incident", help="INC-n")
    export.add_argument("--format", choices=["md", "json", "html", "github"], default="md")
    export.add_argument("--output", help="file to write (default: standard output)")
    export.set_defaults(func=cmd_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # The demo builds its own settings and reads none from the environment or a .env.
        settings = Settings.from_values() if args.func is cmd_demo else load_settings()
        _configure_logging(settings)
        return args.func(settings, args)
    except ConfigError as exc:
        print(f"firebreak: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
