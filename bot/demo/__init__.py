"""``firebreak demo``: the whole product on one machine, without a Slack account.

See :mod:`bot.demo.stack` for what runs, :mod:`bot.demo.console` for the web console.
"""

from __future__ import annotations

import argparse
import sys


def run_demo(args: argparse.Namespace) -> int:
    try:
        from bot.demo.run import run_demo as run
    except ImportError as exc:  # e.g. graphql-core, which the simulated Railway API needs
        print(f"firebreak demo: the Python package providing {exc.name!r} is missing; install "
              "Firebreak with `make demo` or `pip install -e '.[test]'`", file=sys.stderr)
        return 2
    return run(args)


__all__ = ["run_demo"]
