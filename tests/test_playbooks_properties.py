"""Properties: any YAML either loads or raises PlaybookError; durations round-trip."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.durations import parse_duration
from bot.playbooks.loader import PlaybookError, load_playbooks

SAMPLES = Path(__file__).resolve().parents[1] / "playbooks"
FILES = ["escalation.yaml", "oncall.yaml", "services/api.yaml"]

# Words that make a generated document look like a playbook, so validation gets deep.
WORDS = [
    "name", "api", "owners", "provider", "type", "render", "railway", "heroku", "vercel",
    "github-actions", "service_id", "app", "project_id", "health_check", "url", "timeout",
    "settle", "rollback", "approvals", "severities", "escalation", "P0", "P1", "P7", "after",
    "notify", "repeat", "every", "rotations", "backend", "timezone", "handoff", "shift", "start",
    "members", "overrides", "from", "to", "user", "respond_within", "user:U024BE7LH",
    "group:S0LEADS", "oncall:backend", "oncall:nope", "pagerduty:default", "5m", "1h30m", "0m",
    "2026-01-05", "2026-02-30", "09:00", "25:00", "America/New_York", "https://x.example/h",
]
scalars = st.one_of(
    st.sampled_from(WORDS), st.integers(-10, 10**12), st.booleans(), st.none(),
    st.floats(allow_nan=True), st.text(max_size=12),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(WORDS), st.text(max_size=6)), children, max_size=5),
    ),
    max_leaves=30,
)
raw_text = st.one_of(
    st.text(max_size=200),
    st.lists(st.sampled_from(WORDS + [": ", "\n", "  ", "- ", "[", "]", "{", "}", ",", "&a ", "*a", "!!int ",
                                      "!!timestamp ", "!!python/object ", "? ", "'", '"', "#", "|\n"]),
             max_size=40).map("".join),
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy of the samples; each example replaces one file and puts it back."""
    folder = tmp_path_factory.mktemp("property") / "playbooks"
    shutil.copytree(SAMPLES, folder)
    return folder


def load_with(folder: Path, name: str, text: str) -> None:
    path = folder / name
    original = path.read_bytes()
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_playbooks(folder)
    except PlaybookError as error:
        assert error.problems and all(problem.message for problem in error.problems)
    finally:
        path.write_bytes(original)


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(FILES), text=raw_text)
def test_any_text_loads_or_raises_playbook_error(folder: Path, name: str, text: str) -> None:
    load_with(folder, name, text)


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(FILES), document=documents)
def test_any_yaml_document_loads_or_raises_playbook_error(folder: Path, name: str, document: object) -> None:
    load_with(folder, name, yaml.safe_dump(document, allow_unicode=True))


@given(
    weeks=st.integers(0, 10), days=st.integers(0, 6), hours=st.integers(0, 23),
    minutes=st.integers(0, 59), seconds=st.integers(0, 59),
)
def test_parse_duration_round_trips(weeks: int, days: int, hours: int, minutes: int, seconds: int) -> None:
    expected = timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    parts = [(weeks, "w"), (days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")]
    written = "".join(f"{n}{unit}" for n, unit in parts if n) or "0s"
    assert parse_duration(written) == expected
    assert parse_duration(f"{int(expected.total_seconds())}s") == expected
