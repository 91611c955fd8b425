"""Loading the playbook folder: the samples, and every kind of problem with its line."""

from __future__ import annotations

import shutil
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from bot.playbooks.loader import PlaybookError, Problem, load_playbooks
from bot.playbooks.models import (
    HerokuConfig,
    RailwayConfig,
    RenderConfig,
    Severity,
    VercelConfig,
)
from bot.playbooks.targets import OnCallRole, Target, TargetKind

SAMPLES = Path(__file__).resolve().parents[1] / "playbooks"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the sample playbooks, to be broken by each test."""
    shutil.copytree(SAMPLES, tmp_path / "playbooks")
    return tmp_path / "playbooks"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def problems(folder: Path) -> list[Problem]:
    with pytest.raises(PlaybookError) as caught:
        load_playbooks(folder)
    return list(caught.value.problems)


def only(found: list[Problem]) -> Problem:
    assert len(found) == 1, "\n".join(map(str, found))
    return found[0]


# --- the samples ---------------------------------------------------------------------


def test_samples_load() -> None:
    playbooks = load_playbooks(SAMPLES)
    assert list(playbooks.services) == ["api", "jobs", "web", "worker"]
    assert isinstance(playbooks.services["api"].provider, RenderConfig)
    assert isinstance(playbooks.services["web"].provider, VercelConfig)
    assert isinstance(playbooks.services["worker"].provider, HerokuConfig)
    assert isinstance(playbooks.services["jobs"].provider, RailwayConfig)
    api = playbooks.services["api"]
    assert api.owner_group_ids == ("S0PLATFORM",) and api.owner_user_ids == ("U024BE7LH",)
    assert api.health_check is not None and api.health_check.settle == timedelta(minutes=2)
    assert [api.rollback.approvals_needed(s) for s in Severity] == [0, 0, 1, 1]
    assert set(playbooks.rotations) == {"backend", "managers"}
    assert playbooks.rotations["backend"].member_ids == ("U024BE7LH", "U0G9QF9C6", "U1H2J3K4L")
    matrix = playbooks.escalation
    assert matrix.severities[Severity.P0].respond_within == timedelta(minutes=5)
    assert matrix.severities[Severity.P3].respond_within == timedelta(hours=24)
    p0_times = [level.after for level in matrix.levels(Severity.P0)]
    assert p0_times == [timedelta(0), timedelta(minutes=5), timedelta(minutes=15),
                        timedelta(minutes=30), timedelta(hours=1)]
    assert Target.parse("pagerduty:default") in matrix.levels(Severity.P0)[0].notify


def test_every_sample_service_has_the_team_owners_and_a_runbook() -> None:
    for service in load_playbooks(SAMPLES).services.values():
        assert [str(owner) for owner in service.owners] == ["group:S0PLATFORM", "user:U024BE7LH"]
        assert service.runbook_url and service.runbook_url.startswith("https://")
        assert service.health_check and service.health_check.url.startswith("https://")


# --- one problem of each kind, with its line -------------------------------------------------


def test_unknown_provider_names_file_line_and_choices(folder: Path) -> None:
    write(folder, "services/api.yaml", """
        name: api
        description: Backend API
        owners: ["group:S0PLATFORM"]
        provider:
          type: netlify
          service_id: srv-1
    """)
    problem = only(problems(folder))
    assert str(problem) == (
        f"{folder}/services/api.yaml:5:9: provider.type: must be one of render, railway, "
        "vercel, heroku, github-actions (got 'netlify')"
    )


def test_missing_key_points_at_the_enclosing_mapping(folder: Path) -> None:
    write(folder, "services/api.yaml", """
        name: api
        owners: ["group:S0PLATFORM"]
        provider:
          type: railway
          project_id: p
          service_id: s
    """)
    problem = only(problems(folder))
    assert (problem.line, problem.message) == (4, "provider.environment_id: required key is missing")


def test_unknown_key_points_at_the_key_and_suggests(folder: Path) -> None:
    write(folder, "services/api.yaml", """
        name: api
        owners: ["group:S0PLATFORM"]
        provider: {type: render, service_id: srv-1}
        health_check:
          url: https://api.example.com/health
          expect_staus: 200
    """)
    problem = only(problems(folder))
    assert (problem.line, problem.column) == (6, 3)
    assert problem.message == "health_check.expect_staus: unknown key (did you mean 'expect_status'?)"


def test_bad_values_in_a_service(folder: Path) -> None:
    write(folder, "services/api.yaml", """
        name: api
        owners: ["group:S0PLATFORM", "oncall:backend"]
        provider: {type: render, service_id: srv-1}
        health_check:
          url: ftp://api.example.com/health
          timeout: 5
          settle: 2 minutes
        rollback:
          approvals: {P2: 1, P7: 1}
    """)
    found = {(p.line, p.message.split(":")[0]): p.message for p in problems(folder)}
    assert set(found) == {
        (2, "owners[1]"), (5, "health_check.url"), (6, "health_check.timeout"),
        (7, "health_check.settle"), (9, "rollback.approvals.P7"),
    }
    assert "must be a 'user:' or 'group:' target (got 'oncall:backend')" in found[(2, "owners[1]")]
    assert "with its unit" in found[(6, "health_check.timeout")]
    assert "1h30m" in found[(7, "health_check.settle")]
    assert "must be one of P0, P1, P2, P3 (got 'P7')" in found[(9, "rollback.approvals.P7")]


def test_service_name_must_match_its_file(folder: Path) -> None:
    write(folder, "services/api.yaml", """
        # the API
        name: apis
        owners: ["group:S0PLATFORM"]
        provider: {type: render, service_id: srv-1}
    """)
    problem = only(problems(folder))
    assert problem.line == 2 and "does not match the file name" in problem.message


def test_yaml_syntax_error_has_its_line(folder: Path) -> None:
    write(folder, "services/api.yaml", """
        name: api
        owners: ["group:S0PLATFORM"
        provider: {type: render, service_id: srv-1}
    """)
    problem = only(problems(folder))
    assert problem.path.name == "api.yaml" and problem.line == 3
    assert problem.message.startswith("YAML syntax:")


def test_impossible_date_is_a_yaml_problem_with_its_line(folder: Path) -> None:
    text = (folder / "oncall.yaml").read_text().replace("start: 2026-01-05", "start: 2026-02-30", 1)
    (folder / "oncall.yaml").write_text(text)
    problem = only(problems(folder))
    line = text.splitlines().index("    start: 2026-02-30         # a Monday: the first shift begins at 09:00 that day") + 1
    assert problem.line == line and "2026-02-30" in problem.message


def test_duplicate_keys_are_reported(folder: Path) -> None:
    write(folder, "services/api.yaml", """
        name: api
        owners: ["group:S0PLATFORM"]
        provider: {type: render, service_id: srv-1}
        owners: ["user:U024BE7LH"]
    """)
    problem = only(problems(folder))
    assert (problem.line, problem.message) == (4, "duplicate key 'owners' (first at line 2)")


def test_unknown_target_kind(folder: Path) -> None:
    write(folder, "escalation.yaml", ESCALATION.replace('"channel:C0TRIAGE"', '"slack:C0TRIAGE"'))
    problem = only(problems(folder))
    assert problem.line == 15
    assert problem.message == (
        "escalation.P3[0].notify[0]: unknown target kind 'slack' in 'slack:C0TRIAGE': "
        "use one of user, group, oncall, pagerduty, opsgenie, channel"
    )


def test_oncall_target_must_name_a_rotation(folder: Path) -> None:
    write(folder, "escalation.yaml", ESCALATION.replace("oncall:backend:secondary", "oncall:frontend:secondary"))
    problem = only(problems(folder))
    assert problem.line == 13
    assert problem.message == (
        "escalation.P2[1].notify[0]: unknown rotation 'frontend' (oncall.yaml defines backend, managers)"
    )


def test_without_oncall_yaml_an_oncall_target_is_an_error(folder: Path) -> None:
    (folder / "oncall.yaml").unlink()
    found = problems(folder)
    assert found and all("there is no oncall.yaml" in p.message for p in found)
    write(folder, "escalation.yaml", ESCALATION.replace("oncall:backend:secondary", "user:U0G9QF9C6")
          .replace("oncall:backend", "user:U024BE7LH"))
    assert load_playbooks(folder).rotations == {}


def test_levels_must_be_in_order_of_after(folder: Path) -> None:
    write(folder, "escalation.yaml", ESCALATION.replace("after: 1h,", "after: 0m,"))
    problem = only(problems(folder))
    assert problem.line == 13
    assert problem.message == (
        "escalation.P2[1].after: 0s must come after the previous level's 0s: "
        "list levels in increasing order of 'after'"
    )


def test_unknown_severity_and_missing_severities(folder: Path) -> None:
    write(folder, "escalation.yaml", ESCALATION.replace("  P3: {name: Low", "  P7: {name: Low"))
    problem = only(problems(folder))
    assert (problem.line, problem.column) == (5, 3)
    assert problem.message == "severities.P7: must be one of P0, P1, P2, P3 (got 'P7')"
    write(folder, "escalation.yaml", ESCALATION.replace("  P3: {name: Low, meaning: Cosmetic issues, respond_within: 24h}\n", ""))
    problem = only(problems(folder))
    assert (problem.line, problem.message) == (
        2, "severities: missing P3: every severity P0..P3 must be defined"
    )


def test_every_without_repeat(folder: Path) -> None:
    write(folder, "escalation.yaml", ESCALATION.replace("after: 0m, notify: [\"channel", "after: 0m, every: 5m, notify: [\"channel"))
    problem = only(problems(folder))
    assert problem.line == 15 and "'every' spaces repeats" in problem.message


def test_rotation_problems(folder: Path) -> None:
    write(folder, "oncall.yaml", """
        rotations:
          backend:
            timezone: America/New_Yrok
            handoff: 9am
            shift: 30m
            start: 2026-01-05
            members: ["user:U024BE7LH", "group:S0PLATFORM"]
            overrides:
              - {from: "2026-12-26T09:00", to: "2026-12-24T09:00", user: "user:U0G9QF9C6"}
              - {from: "2026-12-24T09:00-05:00", to: "2026-12-26T09:00", user: "user:U0G9QF9C6"}
          managers: {timezone: UTC, handoff: "09:00", shift: 1w, start: 2026-01-05, members: ["user:U04QK2M8N"]}
    """)
    found = {p.message.split(":")[0]: p.line for p in problems(folder)}
    assert found == {
        "rotations.backend.timezone": 3,
        "rotations.backend.handoff": 4,
        "rotations.backend.shift": 5,
        "rotations.backend.members[1]": 7,
        "rotations.backend.overrides[0].to": 9,
        "rotations.backend.overrides[1].from": 10,
    }


def test_handoff_without_quotes_is_read_as_a_time(folder: Path) -> None:
    text = (folder / "oncall.yaml").read_text().replace('handoff: "09:00"', "handoff: 10:30")
    (folder / "oncall.yaml").write_text(text)
    assert load_playbooks(folder).rotations["backend"].handoff.strftime("%H:%M") == "10:30"


def test_all_problems_of_all_files_are_collected(folder: Path) -> None:
    write(folder, "services/api.yaml", "name: api\nowners: []\nprovider: {type: netlify}\n")
    write(folder, "services/web.yaml", "name: web\n  oops: [\n")
    write(folder, "escalation.yaml", ESCALATION.replace("respond_within: 4h", "respond_within: soon"))
    write(folder, "oncall.yaml", "rotations:\n  backend: {timezone: Mars/Olympus}\n")
    found = problems(folder)
    where = [(p.path.name, p.line) for p in found]
    assert ("api.yaml", 2) in where and ("api.yaml", 3) in where
    assert ("web.yaml", 2) in where
    assert ("escalation.yaml", 4) in where
    assert ("oncall.yaml", 2) in where
    assert len(found) >= 6
    message = str(PlaybookError(found))
    assert message.startswith(f"{len(found)} problems in the playbooks:")


def test_missing_escalation_yaml_is_an_error(folder: Path) -> None:
    (folder / "escalation.yaml").unlink()
    problem = only(problems(folder))
    assert problem.path.name == "escalation.yaml" and "required" in problem.message


def test_missing_folder_and_empty_file(folder: Path, tmp_path: Path) -> None:
    assert "not found" in only(problems(tmp_path / "nowhere")).message
    write(folder, "services/api.yaml", "# nothing yet\n")
    assert only(problems(folder)).message == "the file is empty"
    write(folder, "services/api.yaml", "- name: api\n")
    assert "expected a mapping" in only(problems(folder)).message


def test_services_folder_is_optional_and_yml_is_accepted(folder: Path) -> None:
    shutil.rmtree(folder / "services")
    assert load_playbooks(folder).services == {}
    write(folder, "services/api.yml", "name: api\nowners: [\"user:U024BE7LH\"]\nprovider: {type: heroku, app: a}\n")
    assert list(load_playbooks(folder).services) == ["api"]
    write(folder, "services/api.yaml", "name: api\nowners: [\"user:U024BE7LH\"]\nprovider: {type: heroku, app: a}\n")
    assert "keep one" in only(problems(folder)).message


# --- targets and the repeat schedule ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "value", "role", "canonical"),
    [
        ("user:U024BE7LH", TargetKind.USER, "U024BE7LH", None, "user:U024BE7LH"),
        ("group:S0LEADS", TargetKind.GROUP, "S0LEADS", None, "group:S0LEADS"),
        ("oncall:backend", TargetKind.ONCALL, "backend", OnCallRole.PRIMARY, "oncall:backend"),
        ("oncall:backend:primary", TargetKind.ONCALL, "backend", OnCallRole.PRIMARY, "oncall:backend"),
        ("oncall:backend:secondary", TargetKind.ONCALL, "backend", OnCallRole.SECONDARY,
         "oncall:backend:secondary"),
        ("pagerduty:DEFAULT", TargetKind.PAGERDUTY, "default", None, "pagerduty:default"),
        ("opsgenie:Platform Team", TargetKind.OPSGENIE, "Platform Team", None, "opsgenie:Platform Team"),
        ("channel:C0TRIAGE", TargetKind.CHANNEL, "C0TRIAGE", None, "channel:C0TRIAGE"),
    ],
)
def test_targets_parse_and_print_back(text: str, kind: TargetKind, value: str,
                                      role: OnCallRole | None, canonical: str) -> None:
    target = Target.parse(text)
    assert (target.kind, target.value, target.role, str(target)) == (kind, value, role, canonical)
    assert Target.parse(str(target)) == target


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("sms:+15551234", "unknown target kind 'sms'"),
        ("U024BE7LH", "kind:value"),
        ("user:alice", "a Slack user id like U024BE7LH"),
        ("oncall:backend:tertiary", "primary or secondary"),
        ("pagerduty:my-key", "letters, digits and '_'"),
        ("channel:", "nothing after 'channel:'"),
    ],
)
def test_bad_targets_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        Target.parse(text)


def test_repeat_schedule(folder: Path) -> None:
    write(folder, "escalation.yaml", ESCALATION.replace(
        '  P1:\n    - {after: 0m, notify: ["oncall:backend"]}',
        '  P1:\n    - {after: 0m, notify: ["oncall:backend"], repeat: 2}\n'
        '    - {after: 15m, notify: ["group:S0LEADS"]}\n'
        '    - {after: 30m, notify: ["group:S0EXEC"], repeat: 2}',
    ).replace(
        '  P3:\n    - {after: 0m, notify: ["channel:C0TRIAGE"]}',
        '  P3:\n    - {after: 0m, notify: ["channel:C0TRIAGE"], repeat: 1}',
    ).replace(
        '  P0:\n    - {after: 0m, notify: ["oncall:backend"]}',
        '  P0:\n    - {after: 0m, notify: ["oncall:backend"], repeat: 3, every: 2m}',
    ))
    matrix = load_playbooks(folder).escalation

    def schedule(severity: Severity) -> list[tuple[int, int, int]]:
        return [(int(s.offset.total_seconds() // 60), s.level, s.attempt) for s in matrix.steps(severity)]

    # every: explicit spacing
    assert schedule(Severity.P0) == [(0, 0, 0), (2, 0, 1), (4, 0, 2), (6, 0, 3)]
    # spaced by the gap to the next level, the last level by the gap from the previous one
    assert schedule(Severity.P1) == [(0, 0, 0), (15, 0, 1), (15, 1, 0), (30, 0, 2), (30, 2, 0),
                                     (45, 2, 1), (60, 2, 2)]
    # a single level repeats at the severity's respond_within (P3: 24h)
    assert schedule(Severity.P3) == [(0, 0, 0), (24 * 60, 0, 1)]


ESCALATION = """\
severities:
  P0: {name: Critical, meaning: Complete outage, respond_within: 5m}
  P1: {name: High, meaning: Major feature broken, respond_within: 1h}
  P2: {name: Medium, meaning: Minor feature issues, respond_within: 4h}
  P3: {name: Low, meaning: Cosmetic issues, respond_within: 24h}
escalation:
  P0:
    - {after: 0m, notify: ["oncall:backend"]}
  P1:
    - {after: 0m, notify: ["oncall:backend"]}
  P2:
    - {after: 0m, notify: ["oncall:backend"]}
    - {after: 1h, notify: ["oncall:backend:secondary"]}
  P3:
    - {after: 0m, notify: ["channel:C0TRIAGE"]}
"""
