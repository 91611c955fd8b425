"""The demo's copy of the sample playbooks, pointed at the simulated services.

The sample ``playbooks/`` stay untouched. The copy in ``<data-dir>/playbooks`` differs only in
what a local demo needs: health checks go to the simulated providers and settle in seconds,
PagerDuty and Opsgenie are paged at the first P0/P1 level so that their side of a page shows,
and one more service (``storefront``) rolls back through a GitHub Actions workflow.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import yaml

import bot

MARKER = ".firebreak-demo-copy"
HEADER = "# Written by `firebreak demo` from the sample playbooks/ — edits are lost on restart.\n"
DEMO_SETTLE = "3s"
DEMO_TIMEOUT = "2s"
DEMO_PAGERS = ("pagerduty:default", "opsgenie:platform")

STOREFRONT = {
    "name": "storefront",
    "description": "Storefront container image, rolled back by the team's GitHub Actions workflow",
    "owners": ["group:S0PLATFORM", "user:U024BE7LH"],
    "provider": {"type": "github-actions", "repo": "acme/shop", "workflow": "rollback.yml",
                 "ref": "main", "environment": "production"},
    "health_check": {"url": "https://shop.example.com/health", "expect_status": 200},
    "rollback": {"approvals": {"P0": 0, "P1": 0, "P2": 1, "P3": 1}},
    "runbook_url": "https://wiki.example.com/runbooks/storefront",
}


class DemoDataError(Exception):
    """The data folder cannot be used (it holds something that is not the demo's)."""


def find_sample_playbooks() -> Path:
    """The repository's ``playbooks/`` (beside the ``bot`` package), else ``./playbooks``."""
    candidates = [Path(bot.__file__).resolve().parent.parent / "playbooks", Path.cwd() / "playbooks"]
    for candidate in candidates:
        if (candidate / "escalation.yaml").is_file():
            return candidate
    raise DemoDataError("the sample playbooks/ were not found beside the bot package or in the "
                        "current folder; run `firebreak demo` from a Firebreak checkout")


def read_services(source: Path) -> dict[str, dict[str, Any]]:
    """Each sample service's playbook (plus the demo's GitHub Actions one), by name."""
    services: dict[str, dict[str, Any]] = {}
    for path in sorted((source / "services").glob("*.y*ml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if isinstance(data, dict) and data.get("name"):
            services[str(data["name"])] = data
    services.setdefault(STOREFRONT["name"], dict(STOREFRONT))
    return services


def known_user_ids(source: Path) -> set[str]:
    """Every ``user:U…`` the playbooks mention (the demo workspace must know them all)."""
    found: set[str] = set()
    for path in source.rglob("*.y*ml"):
        found.update(re.findall(r"user:(U[A-Z0-9]+)", path.read_text(encoding="utf-8")))
    return found


def write_demo_playbooks(source: Path, dest: Path, services: dict[str, dict[str, Any]],
                         health_urls: dict[str, str]) -> Path:
    """Write the demo copy into ``dest`` (replacing an earlier copy); returns ``dest``."""
    if dest.exists():
        if not (dest / MARKER).exists():
            raise DemoDataError(f"{dest} exists and was not written by `firebreak demo`; "
                                "choose another --data-dir")
        shutil.rmtree(dest)
    (dest / "services").mkdir(parents=True)
    (dest / MARKER).write_text("the demo rewrites this folder at every start\n", encoding="utf-8")
    for name in ("oncall.yaml",):
        if (source / name).exists():
            shutil.copyfile(source / name, dest / name)
    escalation = yaml.safe_load((source / "escalation.yaml").read_text(encoding="utf-8"))
    _write(dest / "escalation.yaml", _with_demo_pagers(escalation))
    for name, service in services.items():
        if name not in health_urls:
            continue  # not simulated: left out rather than pointing at the real internet
        copy = dict(service)
        health = dict(copy.get("health_check") or {})
        health.update(url=health_urls[name], timeout=DEMO_TIMEOUT, settle=DEMO_SETTLE)
        health.setdefault("expect_status", 200)
        copy["health_check"] = health
        _write(dest / "services" / f"{name}.yaml", copy)
    return dest


def _with_demo_pagers(escalation: dict[str, Any]) -> dict[str, Any]:
    levels_by_severity = escalation.get("escalation") or {}
    for severity in ("P0", "P1"):
        levels = levels_by_severity.get(severity) or []
        if levels:
            notify = list(levels[0].get("notify") or [])
            notify += [p for p in DEMO_PAGERS if p not in notify]
            levels[0]["notify"] = notify
    return escalation


def _write(path: Path, data: dict[str, Any]) -> None:
    path.write_text(HEADER + yaml.safe_dump(data, sort_keys=False, allow_unicode=True),
                    encoding="utf-8")
