"""``firebreak demo``: start the stack, print where to go and what to try, stop cleanly."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
import webbrowser
from pathlib import Path

from bot.demo.playbooks import DemoDataError
from bot.demo.simulated import SECRETS
from bot.demo.stack import BOT_TOKEN, SIGNING_SECRET, DemoStack, DemoStartError
from bot.logging import RedactSecrets

LOG_FILE = "firebreak.log"


class _OneLine(logging.Formatter):
    """Errors on the terminal as one line each; the traceback goes to the log file only."""

    def __init__(self, log_path: Path) -> None:
        super().__init__("firebreak demo: %(levelname)s %(name)s: %(message)s")
        self.log_path = log_path

    def format(self, record: logging.LogRecord) -> str:
        line = logging.Formatter.format(self, logging.makeLogRecord(
            {**record.__dict__, "exc_info": None, "exc_text": None, "stack_info": None}))
        return f"{line} (details in {self.log_path})" if record.exc_info else line


def configure_demo_logging(data_dir: Path, level: str = "INFO") -> Path:
    """Everything to ``<data-dir>/firebreak.log``; only errors, briefly, to the terminal."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / LOG_FILE
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    redactor = RedactSecrets([*SECRETS, BOT_TOKEN, SIGNING_SECRET])
    to_file = logging.FileHandler(log_path, mode="w", encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    to_terminal = logging.StreamHandler(sys.stderr)
    to_terminal.setLevel(logging.ERROR)
    to_terminal.setFormatter(_OneLine(log_path))
    for handler in (to_file, to_terminal):
        handler.addFilter(redactor)
        root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return log_path


def banner(stack: DemoStack, *, seconds: float, log_path: Path) -> str:
    pages = stack.console.links.pages() if stack.console else []
    incidents_page = next((p["url"] for p in pages if p["title"] == "Incidents"), None)
    services = ", ".join(f"{s.name} ({s.provider})" for s in stack.world.services.values()) \
        if stack.world else ""
    lines = [
        "",
        (f"Firebreak demo is running (ready in {seconds:.1f} s) — everything on 127.0.0.1, "
         "no Slack account, nothing leaves this machine."),
        "",
        f"  Console   {stack.console_url}",
        f"  Bot       {stack.bot_url}   (Slack requests at /slack/events, signed by the console)",
    ]
    if incidents_page:
        lines.append(f"  Web       {incidents_page}")
    lines += [
        f"  Data      {stack.data_dir.resolve()}  (SQLite, the demo copy of playbooks/, {log_path.name})",
        f"  Services  {services} — each with a bad deploy live: health answers 500",
        "",
        "Try this in the console, as @ava in #general:",
        "  1. /incident open P1 checkout failing service:api",
        "     → a channel #inc-1-checkout-failing with the pinned incident card; #incidents announces it;",
        "       the on-call person is paged by DM, PagerDuty and Opsgenie get an alert (right panel)",
        "  2. open #inc-1-checkout-failing and click Acknowledge on the card (the pages stop)",
        "  3. /rollback api, then Confirm → Render rolls back, health turns 200 (right panel)",
        "  4. /incident note …, /incident status …, or post a message and pin it (📌)",
        "  5. /incident resolve, then /incident export md → download the Markdown post-mortem",
        "  Switch the acting person with the picker at the top left; /incident help lists the rest.",
        "",
        "Press Ctrl-C to stop.",
        "",
    ]
    return "\n".join(lines)


def _display_available() -> bool:
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


async def serve_demo(args: argparse.Namespace, *, ready: asyncio.Event | None = None) -> int:
    data_dir = Path(args.data_dir)
    log_path = configure_demo_logging(data_dir)
    started = time.perf_counter()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    stack = DemoStack(data_dir=data_dir, console_port=args.port)
    try:
        await stack.start()
    except (DemoStartError, DemoDataError) as exc:
        print(f"firebreak demo: {exc}", file=sys.stderr)
        return 2
    try:
        print(banner(stack, seconds=time.perf_counter() - started, log_path=log_path), flush=True)
        if not getattr(args, "no_browser", False) and _display_available():
            with contextlib.suppress(Exception):
                await asyncio.to_thread(webbrowser.open, stack.console_url)
        if ready is not None:
            ready.set()
        await stop.wait()
        print("Stopping the demo…", flush=True)
    finally:
        await stack.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    print("Stopped. The demo data stays in " + str(data_dir) + " until the next start.", flush=True)
    return 0


def run_demo(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(serve_demo(args))
    except KeyboardInterrupt:  # a Ctrl-C before the signal handlers were in place
        return 130
