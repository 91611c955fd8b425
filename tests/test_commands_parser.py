import pytest

from bot.incidents.commands import UsageError, parse_incident_command, parse_target
from bot.incidents.models import Role
from bot.playbooks.models import Severity


def test_open_with_service_and_title():
    cmd = parse_incident_command("open P1 checkout is failing service:api")
    assert (cmd.name, cmd.severity, cmd.text, cmd.service) == ("open", Severity.P1, "checkout is failing", "api")


def test_declare_is_open_and_open_alone_asks_for_the_form():
    assert parse_incident_command("declare p0 all down").severity == Severity.P0
    cmd = parse_incident_command("open")
    assert cmd.name == "open" and cmd.severity is None


@pytest.mark.parametrize("text, problem", [
    ("open P7 broken", "not a severity"),
    ("open P1", "needs a title"),
    ("open P1    service:api", "needs a title"),
    ("frobnicate", "not an /incident command"),
    ("sev P9", "not a severity"),
    ("assign boss <@U1>", "not a role"),
    ("assign commander bob", "not a person"),
    ("note", "needs some text"),
    ("ack please", "takes no text"),
    ("export pdf", "Choose one format"),
    ("page nobody", "not someone Firebreak can page"),
    ("note " + "x" * 3990, "characters long"),
])
def test_bad_input_names_the_problem_and_usage(text, problem):
    with pytest.raises(UsageError) as info:
        parse_incident_command(text)
    assert problem in info.value.problem
    assert "/incident" in info.value.usage


def test_mentions_in_both_slack_forms():
    assert parse_incident_command("assign commander <@U024BE7LH|alice>").user == "U024BE7LH"
    cmd = parse_incident_command("assign INC-4 scribe <@U0G9QF9C6>")
    assert (cmd.incident, cmd.role, cmd.user) == (4, Role.SCRIBE, "U0G9QF9C6")


def test_incident_reference_is_optional_and_first():
    assert parse_incident_command("note INC-12 db is slow").incident == 12
    assert parse_incident_command("note INC-12 db is slow").text == "db is slow"
    assert parse_incident_command("note db is slow").incident is None
    assert parse_incident_command("ack inc-3").incident == 3


def test_page_targets():
    assert parse_target("<!subteam^S0LEADS|@leads>") == "group:S0LEADS"
    assert parse_target("<@U1H2J3K4L>") == "user:U1H2J3K4L"
    assert parse_target("oncall:backend") == "oncall:backend"
    cmd = parse_incident_command("page oncall:backend:secondary please look")
    assert (cmd.target, cmd.text) == ("oncall:backend:secondary", "please look")


def test_followup_owner_and_list_all():
    cmd = parse_incident_command("followup add an alert on p99 <@U1>")
    assert (cmd.text, cmd.user) == ("add an alert on p99", "U1")
    assert parse_incident_command("list all").include_all
    assert parse_incident_command("").name == "help"
