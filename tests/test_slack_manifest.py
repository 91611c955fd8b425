"""The Slack app manifest asks for exactly what the code uses, and has Slack's manifest shape.

``bot/slack/manifest.py`` is the one list of commands, events and bot scopes. These tests
read the code (every ``AsyncWebClient`` method it calls, every listener it registers) and
check the list against it, the README's scope list against the list, and
``slack-manifest.yml`` against what ``firebreak slack manifest`` prints.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
from functools import cache
from pathlib import Path

import pytest
import yaml
from slack_sdk.web.async_client import AsyncWebClient

from bot.cli import main
from bot.slack.manifest import (
    BOT_EVENTS,
    BOT_SCOPES,
    EVENT_SCOPES,
    METHOD_SCOPES,
    PLACEHOLDER_URL,
    SLASH_COMMANDS,
    manifest,
    manifest_yaml,
)
from tests.support.specs import spec_path

REPO = Path(__file__).resolve().parents[1]
# The code that talks to Slack as Firebreak; the emulator and the demo console play Slack.
SCANNED = [p for folder in ("bot", "handlers") for p in (REPO / folder).rglob("*.py")
           if not p.relative_to(REPO).as_posix().startswith(("bot/emulator/", "bot/demo/"))]


@cache
def _web_api_method(attribute: str) -> frozenset[str]:
    """The Web API methods an ``AsyncWebClient`` method calls (``files_upload_v2``: two)."""
    source = inspect.getsource(vars(AsyncWebClient)[attribute])
    direct = re.findall(r'api_call\(\s*"([\w.]+)"', source)
    if direct:
        return frozenset(direct)
    inner = [name for name in re.findall(r"self\.(\w+)\(", source) if _is_client_method(name)]
    return frozenset().union(*(_web_api_method(name) for name in inner))


def _is_client_method(name: str) -> bool:
    return not name.startswith("_") and callable(vars(AsyncWebClient).get(name))


def _is_api_method(name: str) -> bool:
    return _is_client_method(name) and bool(_web_api_method(name))


def _calls_and_decorators() -> tuple[set[str], dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]]]:
    """Web API methods called in the scanned code, and listeners by decorator (``event:pin_added``)."""
    methods: set[str] = set()
    listeners: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]] = {}
    for path in SCANNED:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and _is_api_method(node.func.attr):
                methods |= _web_api_method(node.func.attr)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for decorator in node.decorator_list:
                    if isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute) \
                            and decorator.func.attr in ("event", "command") and decorator.args \
                            and isinstance(decorator.args[0], ast.Constant):
                        key = f"{decorator.func.attr}:{decorator.args[0].value}"
                        listeners.setdefault(key, []).append(node)
    return methods, listeners


def _does_nothing(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    body = [s for s in function.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    return all(isinstance(s, ast.Return) and (s.value is None or
                                              (isinstance(s.value, ast.Constant) and s.value.value is None))
               for s in body)


def test_the_scopes_come_from_exactly_the_web_api_methods_the_code_calls() -> None:
    called, _ = _calls_and_decorators()
    assert called == set(METHOD_SCOPES), (
        f"called but not in METHOD_SCOPES: {sorted(called - set(METHOD_SCOPES))}; "
        f"listed but never called: {sorted(set(METHOD_SCOPES) - called)}")


def test_the_events_and_commands_are_exactly_those_with_listeners() -> None:
    _, listeners = _calls_and_decorators()
    acting = {key.split(":", 1)[1] for key, functions in listeners.items()
              if key.startswith("event:") and not all(_does_nothing(f) for f in functions)}
    assert acting == set(EVENT_SCOPES) == set(BOT_EVENTS)
    commands = {key.split(":", 1)[1] for key in listeners if key.startswith("command:")}
    assert commands == {c.command for c in SLASH_COMMANDS}


def test_each_methods_scopes_agree_with_slacks_openapi() -> None:
    """A cross-check against a typo: the vendored 2021 spec names classic scopes
    (``channels:write``), so each of our scopes must share its family with one of them."""
    spec = json.loads(spec_path("slack", "slack_web_openapi_v2.json").read_text())
    for method, scopes in METHOD_SCOPES.items():
        operations = spec["paths"].get(f"/{method}")
        if operations is None:
            continue  # newer than the spec (files.*External)
        listed = {s for op in operations.values() for sec in op.get("security", []) for s in sec.get("slackAuth", [])}
        families = {s.split(":")[0] for s in listed if s != "none"}
        assert {s.split(":")[0] for s in scopes} <= families, (method, scopes, listed)
        assert bool(scopes) == bool(families), (method, scopes, listed)


def test_the_manifest_has_slacks_shape_and_the_one_list_of_scopes_and_events() -> None:
    app = manifest("https://firebreak.example.com/")
    _check_manifest_shape(app)
    endpoint = "https://firebreak.example.com/slack/events"
    assert [c["url"] for c in app["features"]["slash_commands"]] == [endpoint, endpoint]
    assert app["settings"]["event_subscriptions"]["request_url"] == endpoint
    assert app["settings"]["interactivity"] == {"is_enabled": True, "request_url": endpoint}
    assert app["settings"]["socket_mode_enabled"] is False
    assert app["oauth_config"]["scopes"]["bot"] == list(BOT_SCOPES)
    assert app["settings"]["event_subscriptions"]["bot_events"] == list(BOT_EVENTS)

    socket = manifest(None, socket_mode=True)
    _check_manifest_shape(socket)
    assert socket["settings"]["socket_mode_enabled"] is True
    assert "request_url" not in socket["settings"]["event_subscriptions"]
    assert "request_url" not in socket["settings"]["interactivity"]
    assert all("url" not in c for c in socket["features"]["slash_commands"])
    assert socket["oauth_config"] == app["oauth_config"]


def _check_manifest_shape(app: dict) -> None:
    """Slack's app manifest reference (docs.slack.dev/reference/app-manifest), the parts used."""
    assert set(app) <= {"_metadata", "display_information", "features", "oauth_config", "settings", "functions"}
    display = app["display_information"]
    assert set(display) <= {"name", "description", "long_description", "background_color"}
    assert 0 < len(display["name"]) <= 35 and len(display.get("description", "")) <= 140
    assert re.fullmatch(r"#(?:[0-9a-fA-F]{3}){1,2}", display["background_color"])
    features = app["features"]
    assert set(features) <= {"app_home", "bot_user", "shortcuts", "slash_commands", "unfurl_domains"}
    assert re.fullmatch(r"[a-z0-9._-]{1,80}", features["bot_user"]["display_name"])
    for command in features["slash_commands"]:
        assert set(command) <= {"command", "url", "description", "usage_hint", "should_escape"}
        assert re.fullmatch(r"/[a-z0-9_-]{1,31}", command["command"])
        assert 0 < len(command["description"]) <= 2000 and len(command["usage_hint"]) <= 1000
        assert command["should_escape"] is True  # the parsers read <@U…> mentions
    assert set(app["oauth_config"]) <= {"scopes", "redirect_urls"}
    assert all(re.fullmatch(r"[a-z]+(:[a-z.]+)?", s) for s in app["oauth_config"]["scopes"]["bot"])
    settings = app["settings"]
    assert set(settings) <= {"allowed_ip_address_ranges", "event_subscriptions", "interactivity",
                             "org_deploy_enabled", "socket_mode_enabled", "token_rotation_enabled"}
    assert set(settings["event_subscriptions"]) <= {"request_url", "bot_events", "user_events"}
    assert isinstance(settings["interactivity"]["is_enabled"], bool)
    urls = [settings["event_subscriptions"].get("request_url"), settings["interactivity"].get("request_url"),
            *(c.get("url") for c in features["slash_commands"])]
    assert all(u is None or u.startswith("https://") for u in urls)


def test_slack_manifest_yml_is_what_the_cli_prints(capsys) -> None:
    committed = (REPO / "slack-manifest.yml").read_text()
    assert committed == manifest_yaml(PLACEHOLDER_URL)
    assert main(["slack", "manifest", "--url", PLACEHOLDER_URL]) == 0
    assert capsys.readouterr().out == committed
    assert yaml.safe_load(committed) == manifest(PLACEHOLDER_URL)


def test_the_cli_fills_in_the_url_or_sets_up_socket_mode(capsys) -> None:
    assert main(["slack", "manifest", "--url", "https://ops.example.org/firebreak"]) == 0
    app = yaml.safe_load(capsys.readouterr().out)
    assert app["settings"]["event_subscriptions"]["request_url"] == "https://ops.example.org/firebreak/slack/events"
    assert main(["slack", "manifest", "--socket-mode"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["settings"]["socket_mode_enabled"] is True


@pytest.mark.parametrize("args", [[], ["--url", "http://firebreak.example.com"], ["--url", "https://"]])
def test_the_cli_refuses_a_manifest_slack_could_not_reach(args, capsys) -> None:
    assert main(["slack", "manifest", *args]) == 2
    assert "https://" in capsys.readouterr().err


def test_the_readme_lists_the_same_scopes_and_events() -> None:
    readme = (REPO / "README.md").read_text()
    scopes = re.search(r"Bot scopes: (.+?)\. Events: (.+?)\.\s", readme, re.DOTALL)
    assert scopes, "README: the 'Bot scopes: …. Events: ….' sentence is missing"
    assert re.findall(r"`([^`]+)`", scopes.group(1)) == list(BOT_SCOPES)
    assert re.findall(r"`([^`]+)`", scopes.group(2)) == list(BOT_EVENTS)
