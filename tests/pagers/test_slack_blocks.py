"""The pure Block Kit builder of paging messages, and its limits."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.pagers.slack_blocks import (
    BUTTON_VALUE_LIMIT,
    HEADER_LIMIT,
    MAX_BLOCKS,
    SECTION_TEXT_LIMIT,
    PageAckValue,
    build_page_acknowledged_blocks,
    build_page_blocks,
    page_ack_value,
    page_fallback_text,
    parse_page_ack_value,
)
from bot.slack.ids import ActionId
from tests.pagers.conftest import make_request


def texts(blocks: list[dict[str, Any]]) -> list[str]:
    """Every mrkdwn text (the header is plain_text, where Slack parses no markup)."""
    found = [b["text"]["text"] for b in blocks if "text" in b and b["text"]["type"] == "mrkdwn"]
    found += [e["text"] for b in blocks if b["type"] == "context" for e in b["elements"]]
    return found


def buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"] if e["type"] == "button"]


def assert_within_limits(blocks: list[dict[str, Any]]) -> None:
    assert 0 < len(blocks) <= MAX_BLOCKS
    for block in blocks:
        if block["type"] == "header":
            assert block["text"]["type"] == "plain_text" and len(block["text"]["text"]) <= HEADER_LIMIT
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= SECTION_TEXT_LIMIT
        if block["type"] == "context":
            assert len(block["elements"]) <= 10
        if "block_id" in block:
            assert len(block["block_id"]) <= 255
    for button in buttons(blocks):
        assert len(button["text"]["text"]) <= 75
        assert len(button["value"]) <= BUTTON_VALUE_LIMIT
        assert len(button["action_id"]) <= 255


def test_page_blocks_content() -> None:
    request = make_request(level=1, repeat=1, message="Please look at the db")
    blocks = build_page_blocks(request)
    assert blocks[0]["type"] == "header"
    assert "INC-12" in blocks[0]["text"]["text"] and "P1" in blocks[0]["text"]["text"]
    body = "\n".join(texts(blocks))
    assert "Checkout is failing" in body and "Checkout is failing" in blocks[0]["text"]["text"]
    assert "level 2 (repeat 1)" in body
    assert "<#C0INC12>" in body
    assert "> Please look at the db" in body
    (button,) = buttons(blocks)
    assert button["action_id"] == ActionId.PAGE_ACK
    assert button["text"]["text"] == "Acknowledge"
    assert json.loads(button["value"]) == {"incident": 12, "level": 1, "repeat": 1}
    assert_within_limits(blocks)


def test_channel_variant_without_button() -> None:
    assert buttons(build_page_blocks(make_request(), with_button=False)) == []


def test_channel_link_when_no_channel_id() -> None:
    body = "\n".join(texts(build_page_blocks(make_request(channel_id=None, channel_link="https://x.slack.com/archives/C9"))))
    assert "<https://x.slack.com/archives/C9|incident channel>" in body


def test_user_text_cannot_ping_anyone_but_people_it_names() -> None:
    request = make_request(incident_title="<!channel> a &amp; b <@U1> <!subteam^S1|@platform>",
                           message="<!here> \u202eoops")
    blocks = build_page_blocks(request)
    body = "\n".join(texts([b for b in blocks if b["type"] != "context"]))  # the context has <!date^…>
    assert "<!" not in body and "\u202e" not in body
    assert "@channel a &amp; b <@U1> @platform" in body and "> @here oops" in body
    assert "<!" not in page_fallback_text(request)


@pytest.mark.parametrize("char", ["x", "&", "<", "é", "<!"])
def test_huge_input_stays_within_limits(char: str) -> None:
    request = make_request(incident_title=char * 10_000, message=(char * 50 + "\n") * 200)
    blocks = build_page_blocks(request)
    assert_within_limits(blocks)
    if char == "<!":  # shown as "&lt;!": never cut in half
        for text in texts(blocks):
            assert not text.rstrip("…").endswith(("&", "&l", "&lt", "&lt;"))
    assert len(page_fallback_text(request)) <= 3000


def test_ack_value_round_trip() -> None:
    request = make_request(incident_number=4711, level=3, repeat=2)
    assert page_ack_value(request) == '{"incident":4711,"level":3,"repeat":2}'
    assert parse_page_ack_value(page_ack_value(request)) == PageAckValue(4711, 3, 2)
    assert parse_page_ack_value("12") == PageAckValue(12)
    assert parse_page_ack_value("INC-12") == PageAckValue(12)


@pytest.mark.parametrize("value", ["", "abc", "[]", "0", "INC-0", "²", "12x", '{"incident": "12"}', '{"incident": 0}', '{"incident": true}', '{"incident": 1, "level": -1}'])
def test_bad_ack_values(value: str) -> None:
    with pytest.raises(ValueError):
        parse_page_ack_value(value)


def test_acknowledged_variant() -> None:
    blocks = build_page_acknowledged_blocks(make_request(), "U024BE7LH")
    assert buttons(blocks) == []
    assert "Acknowledged by <@U024BE7LH>" in texts(blocks)[-1]
    assert "Acknowledged by Alice @here" in texts(build_page_acknowledged_blocks(make_request(), "Alice <!here>"))[-1]
    assert_within_limits(blocks)


def test_a_manual_page_says_it_is_one_and_who_sent_it() -> None:
    request = make_request(manual=True, paged_by="U024BE7LH", message="can you look at the index?")
    blocks = build_page_blocks(request)
    body = "\n".join(texts(blocks))
    assert "manual page from <@U024BE7LH>" in body
    assert "escalation" not in body and "level" not in body
    assert page_fallback_text(request).startswith("Page: INC-12 P1 (manual page from <@U024BE7LH>): ")
    acknowledged = build_page_acknowledged_blocks(request, "U1H2J3K4L")
    assert "manual page from <@U024BE7LH>" in str(acknowledged) and "escalation level" not in str(acknowledged)
    assert "(manual page)" in page_fallback_text(make_request(manual=True))  # nobody named: still not a level
    assert "escalation level 1" in page_fallback_text(make_request())
