"""``firebreak demo``: the whole product on one machine, without a Slack account.

See :mod:`bot.demo.stack` for what runs, :mod:`bot.demo.console` for the web console.
"""

from __future__ import annotations

import argparse


def run_demo(args: argparse.Namespace) -> int:
    from bot.demo.run import run_demo as run

    return run(args)


__all__ = ["run_demo"]
