"""Properties of the one helper for text people type (``bot.text``): shown again, it never
pings a channel or a group, keeps the people it names, never reads reversed, and showing
twice changes nothing; text that draws nothing counts as no text."""

from __future__ import annotations

import re

from hypothesis import example, given
from hypothesis import strategies as st

from bot.text import BIDI_CONTROLS, clean, is_blank, shown

# A live broadcast or group mention as Slack reads mrkdwn: ``<!here>``, ``<!channel|x>``,
# ``<!subteam^S1|@g>``…, in any letter case.
LIVE = re.compile(r"<!(?:channel|here|everyone|group|subteam\^)", re.IGNORECASE)
USER = re.compile(r"<@[UW][A-Z0-9]{2,10}>")

PIECES = ["<!channel>", "<!here>", "<!everyone>", "<!here|here>", "<!CHANNEL>", "<!group>",
          "<!subteam^S0PLATFORM|@platform>", "<!subteam^S0LEADS>", "<!date^1700000000^{date}|Nov 14>",
          "<@U024BE7LH>", "<@W0ENTERPR>", "<@U1|ava>", "<#C0GENERAL|general>", "<https://x.example|x>",
          "<", ">", "!", "|", "^", "@", "&lt;", "&amp;", "*bold*", " ", "\n", "\u200b", "\u202e",
          "\u2066", "\u2069", "\x00", "channel", "here", "subteam", "<!", "<!sub", "team^S1>"]
typed = st.one_of(st.lists(st.sampled_from(PIECES) | st.text(max_size=4), max_size=30).map("".join),
                  st.text(max_size=200))


@given(typed)
@example("<!chan<!here>nel>")
@example("<!here|<!channel>>")
@example("<<!here>!channel>")
@example("<!subteam^S1|<!subteam^S2|@a>>")
def test_shown_text_never_pings_a_channel_or_a_group(text: str) -> None:
    assert not LIVE.search(shown(text))


@given(typed)
def test_people_named_stay_named(text: str) -> None:
    result = shown(text)
    for mention in USER.findall(text):
        assert mention in result


@given(typed)
def test_showing_twice_changes_nothing(text: str) -> None:
    once = shown(text)
    assert shown(once) == once


@given(typed)
def test_nothing_shown_reads_reversed_or_holds_nul(text: str) -> None:
    for result in (shown(text), clean(text)):
        assert not set(result) & (BIDI_CONTROLS | {"\x00"})


def test_broadcasts_and_groups_are_written_as_plain_names() -> None:
    assert shown("<!channel> checkout down, <!here> <!everyone> <!subteam^S0PLATFORM|@platform> "
                 "ask <@U024BE7LH>") == "@channel checkout down, @here @everyone @platform ask <@U024BE7LH>"
    assert shown("<!subteam^S0LEADS>") == "@S0LEADS"
    assert shown("unclosed <!here") == "unclosed &lt;!here"
    assert shown("\u202eesrever") == "esrever"


@given(st.text(alphabet="\u200b\u200c\u200d\u2060\ufeff\u202a\u202b\u202c\u202d\u202e\u2066\u2067"
                        "\u2068\u2069\u00ad\u180e\u3164\u2800 \t\n\u3000\u0301\ufe0f", max_size=40))
def test_text_of_invisible_characters_is_blank(text: str) -> None:
    assert is_blank(text)


@given(st.text(min_size=1).filter(lambda t: any(c.isascii() and c.isalnum() for c in t)))
def test_text_with_a_letter_or_digit_is_not_blank(text: str) -> None:
    assert not is_blank(text)
