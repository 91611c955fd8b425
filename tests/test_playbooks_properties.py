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


# --- hostile input (tests/hostile owns the Slack side; the files are checked here) ----------

SERVICE = yaml.safe_load((SAMPLES / "services" / "api.yaml").read_text())
junk = st.one_of(
    st.none(), st.booleans(), st.integers(-10**30, 10**30), st.floats(), st.text(max_size=30),
    st.sampled_from(["", "\x00", "🔥" * 50, "x" * 5000, "P9", "-1m", "9999999h", "user:", "http://", "10:30"]),
    st.lists(st.text(max_size=8), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*prefix, index))


SERVICE_PATHS = [path for path in _paths(SERVICE) if path]


def _child(parent, key):
    if isinstance(parent, dict) and key in parent:
        return parent[key]
    if isinstance(parent, list) and isinstance(key, int) and key < len(parent):
        return parent[key]
    return None


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_a_sample_service_with_broken_fields_loads_or_names_each_problem(folder: Path, data) -> None:
    """One to three fields of a valid service replaced by anything, or removed: the folder
    loads, or every problem names the file and a line (the key, or the mapping missing it)."""
    import copy

    document = copy.deepcopy(SERVICE)
    for path in data.draw(st.lists(st.sampled_from(SERVICE_PATHS), min_size=1, max_size=3, unique=True)):
        parent = document
        for key in path[:-1]:  # an earlier change may have replaced or removed a parent
            parent = _child(parent, key)
        last = path[-1]
        if isinstance(parent, dict) and data.draw(st.booleans()):
            parent.pop(last, None)
        elif _child(parent, last) is not None:
            parent[last] = data.draw(junk)
    path = folder / "services" / "api.yaml"
    original = path.read_bytes()
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    try:
        load_playbooks(folder)
    except PlaybookError as error:
        for problem in error.problems:
            assert problem.message and problem.path.name in ("api.yaml", "escalation.yaml")
            assert problem.line is not None or "YAML" in problem.message or "missing" in problem.message, problem
    finally:
        path.write_bytes(original)


def _alias_bomb() -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    return "\n".join(lines + ["name: api", "owners: *a9"]) + "\n"


HOSTILE_FILES = {
    "not UTF-8": b"name: api\nowners: [\xff\xfe]\n",
    "a NUL character": b"name: api\x00\n",
    "a byte-order mark": "\ufeffname: api\n".encode(),
    "aliases expanding to a billion values": _alias_bomb().encode(),
    "a value that contains itself": b"name: api\nowners: &a [*a]\n",
    "nested 20,000 deep": b"name: " + b"[" * 20_000 + b"]" * 20_000 + b"\n",
    "forty thousand unknown keys": "".join(f"k{i}: {i}\n" for i in range(40_000)).encode(),
    "a Python object tag": b"name: !!python/object/apply:os.system ['echo pwned']\n",
    "a timestamp that is no date": b"name: api\nx: !!timestamp 2026-02-30\n",
    "a document stream": b"name: api\n---\nname: web\n",
    "a bare scalar": b"just text\n",
}


@pytest.mark.timeout(120)  # a hang guard (an alias bomb expanded would never end), not a speed test
@pytest.mark.parametrize("name", list(HOSTILE_FILES))
def test_hostile_files_give_a_playbook_error(folder: Path, name: str) -> None:
    path = folder / "services" / "api.yaml"
    original = path.read_bytes()
    path.write_bytes(HOSTILE_FILES[name])
    try:
        with pytest.raises(PlaybookError) as caught:
            load_playbooks(folder)
    finally:
        path.write_bytes(original)
    assert all(problem.message for problem in caught.value.problems)
    assert any(problem.path == path for problem in caught.value.problems), caught.value


def test_a_folder_where_a_file_should_be_is_reported(folder: Path) -> None:
    (folder / "services" / "evil.yaml").mkdir()
    (folder / "escalation.yml").write_text("severities: {}\n")
    try:
        with pytest.raises(PlaybookError) as caught:
            load_playbooks(folder)
        assert any("both escalation.yaml and escalation.yml" in p.message for p in caught.value.problems)
    finally:
        (folder / "services" / "evil.yaml").rmdir()
        (folder / "escalation.yml").unlink()
    load_playbooks(folder)  # the folder is as it was
