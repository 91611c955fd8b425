"""Slack mrkdwn, converted once for every export: plain text, Markdown and HTML.

Text on the timeline is stored as it was shown in Slack (``*bold*``, ``_italic_``,
``~strike~``, code, ``<url|label>``, ``<@U…>``, ``<#C…>``, ``<!here>``, ``:emoji:`` and
``&amp;``-escapes). :func:`convert` parses it into a few nodes, with mentions already
turned into names, and :class:`Rich` renders those nodes for each format:

- ``plain``: readable text without markup (JSON, SVG tooltips);
- ``markdown``: GitHub-flavoured Markdown, safe in a paragraph, list item or table cell;
- ``html``: escaped HTML (links only to http, https and mailto addresses).

Emoji codes become their characters; a code that has none (a workspace's custom emoji)
stays as ``:name:``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from functools import lru_cache
from typing import NamedTuple

import emoji
from markupsafe import Markup, escape

from bot.export.names import Names

# --- nodes ------------------------------------------------------------------------------------


class Text(NamedTuple):
    text: str


class Styled(NamedTuple):
    style: str  # "bold", "italic" or "strike"
    children: tuple[Node, ...]


class Code(NamedTuple):
    text: str
    block: bool = False  # ```preformatted```


class Link(NamedTuple):
    url: str
    label: str | None


class Mention(NamedTuple):
    text: str  # "@Ava Lin", "#inc-1-checkout", "@here"


class Emoji(NamedTuple):
    char: str


# Plain tuples (many are made per export); tell them apart by class, never by ==.
Node = Text | Styled | Code | Link | Mention | Emoji

# --- parsing ----------------------------------------------------------------------------------

_TOKENS = re.compile(r"```([\s\S]*?)```|`([^`\n]+)`|<([^<>\n]+)>")
_SLOT = re.compile("\x00(\\d+)\x00")
_EDGE_BEFORE = r"(?:(?<=^)|(?<=[\s\x00(\[{'\"“‘/-]))"
_EDGE_AFTER = r"(?=$|[\s\x00)\]}'\"”’/.,:;!?-])"
_STYLES = {
    mark: re.compile(_EDGE_BEFORE + re.escape(mark) + r"(?=[^\s" + re.escape(mark) + r"])(.+?)(?<=\S)"
                     + re.escape(mark) + _EDGE_AFTER)
    for mark in "*_~"
}
_STYLE_NAMES = {"*": "bold", "_": "italic", "~": "strike"}
_EMOJI = re.compile(r":(?<![A-Za-z0-9]:)([a-z0-9_+'-]+):(?![A-Za-z0-9])")  # starts with ":": quick to scan
_LINK_TARGET = re.compile(r"^(?:https?|mailto):", re.IGNORECASE)
_SPECIAL = frozenset("*_~`<&:")
# Slack names that the Unicode CLDR names do not know.
_SLACK_EMOJI = {"simple_smile": "🙂", "white_square": "⬜", "black_square": "⬛"}
_SKIN_TONE = re.compile(r"^skin-tone-[2-6]$")


@lru_cache(maxsize=4096)
def emoji_char(name: str) -> str | None:
    """The character of a Slack emoji code (``white_check_mark`` → ✅), None if it has none."""
    if _SKIN_TONE.match(name):
        return ""  # a modifier of the emoji before it: dropped
    if name in _SLACK_EMOJI:
        return _SLACK_EMOJI[name]
    candidates = [name]
    if match := re.fullmatch(r"large_([a-z]+)_(circle|square)", name):  # Slack's large_orange_circle
        candidates.append(f"{match.group(1)}_{match.group(2)}")
    for candidate in candidates:
        for language in ("alias", "en"):
            found = emoji.emojize(f":{candidate}:", language=language)
            if found != f":{candidate}:":
                return found
    return None


def _entity(inner: str, names: Names, clean: Callable[[str], str]) -> Node:
    target, _, label = inner.partition("|")
    label = html.unescape(label) if label else ""
    if target.startswith("@"):
        ref = target[1:]
        if names.known_user(ref) or not label:
            return Mention("@" + clean(names.user(ref)))  # a name from Slack: scrubbed too
        return Mention("@" + label.lstrip("@"))
    if target.startswith("#"):
        ref = target[1:]
        if names.known_channel(ref) or not label:
            name = clean(names.channel(ref))
            return Mention(name if name.startswith("#") else "#" + name)
        return Mention("#" + label.lstrip("#"))
    if target.startswith("!subteam^"):
        return Mention("@" + (label.lstrip("@") if label else target[len("!subteam^"):]))
    if target in ("!here", "!channel", "!everyone"):
        return Mention("@" + target[1:])
    if target.startswith("!date^"):
        return Text(label or target)
    if _LINK_TARGET.match(target):
        url = html.unescape(target)
        return Link(url, label if label and label != url else None)
    return Text(html.unescape("<" + inner + ">"))


def _unescape(text: str) -> str:
    return html.unescape(text) if "&" in text else text


def _text_nodes(text: str, slots: list[Node]) -> list[Node]:
    """Plain text with slot references (``\\x00n\\x00``) and emoji codes."""
    nodes: list[Node] = []
    for index, part in enumerate(_SLOT.split(text)):
        if index % 2:
            nodes.append(slots[int(part)])
            continue
        if not part:
            continue
        if ":" not in part:
            nodes.append(Text(_unescape(part)))
            continue
        position = 0
        for match in _EMOJI.finditer(part):
            char = emoji_char(match.group(1))
            if char is None:
                continue
            if match.start() > position:
                nodes.append(Text(_unescape(part[position:match.start()])))
            if char:
                nodes.append(Emoji(char))
            position = match.end()
        if position < len(part):
            nodes.append(Text(_unescape(part[position:])))
    return nodes


def _styled(text: str, slots: list[Node]) -> list[Node]:
    """``*bold*``, ``_italic_`` and ``~strike~`` (nested too) over text with slots."""
    if "*" not in text and "_" not in text and "~" not in text:
        return _text_nodes(text, slots)
    first: tuple[int, re.Match[str]] | None = None
    for mark, pattern in _STYLES.items():
        match = pattern.search(text)
        if match and (first is None or match.start() < first[1].start()):
            first = (ord(mark), match)
    if first is None:
        return _text_nodes(text, slots)
    mark, match = chr(first[0]), first[1]
    return [*_text_nodes(text[:match.start()], slots),
            Styled(_STYLE_NAMES[mark], tuple(_styled(match.group(1), slots))),
            *_styled(text[match.end():], slots)]


def parse(text: str | None, names: Names, clean: Callable[[str], str] = lambda s: s) -> tuple[Node, ...]:
    """Slack mrkdwn as nodes; mentions become names (from ``names``, passed through ``clean``)."""
    if not text:
        return ()
    if not _SPECIAL.intersection(text):
        return (Text(text),)
    slots: list[Node] = []

    def keep(match: re.Match[str]) -> str:
        pre, code, entity = match.groups()
        if pre is not None:
            slots.append(Code(html.unescape(pre.strip("\n")), block=True))
        elif code is not None:
            slots.append(Code(html.unescape(code)))
        else:
            slots.append(_entity(entity, names, clean))
        return f"\x00{len(slots) - 1}\x00"

    skeleton = _TOKENS.sub(keep, text.replace("\x00", ""))
    lines = skeleton.split("\n")
    nodes: list[Node] = []
    for index, line in enumerate(lines):
        if index:
            nodes.append(Text("\n"))
        nodes += _styled(line, slots)
    return tuple(_merge(nodes) if len(nodes) > 1 else nodes)


def _merge(nodes: list[Node]) -> list[Node]:
    merged: list[Node] = []
    for node in nodes:
        if isinstance(node, Text) and merged and isinstance(merged[-1], Text):
            merged[-1] = Text(merged[-1].text + node.text)
        elif not (isinstance(node, Text) and not node.text):
            merged.append(node)
    return merged


# --- rendering --------------------------------------------------------------------------------


def to_plain(nodes: tuple[Node, ...]) -> str:
    parts: list[str] = []
    for node in nodes:
        if isinstance(node, Text):
            parts.append(node.text)
        elif isinstance(node, Styled):
            parts.append(to_plain(node.children))
        elif isinstance(node, Code):
            parts.append(node.text)
        elif isinstance(node, Link):
            parts.append(f"{node.label} ({node.url})" if node.label else node.url)
        elif isinstance(node, Mention):
            parts.append(node.text)
        else:
            parts.append(node.char)
    return "".join(parts)


# `_` between two letters or digits is no emphasis (snake_case stays as it is), and
# `[x]` is no link unless `(`, `[` or `:` follows the `]`.
_MD_SPECIAL = re.compile(r"([\\`*~<>|]|\](?=[(\[:])|(?<!\w)_|_(?!\w))|^(#)(?=#*(?:\s|$))")
_MD_WRAP = {"bold": "**", "italic": "*", "strike": "~~"}


_MD_MAYBE = re.compile(r"[\\`*~<>|\]_#]")  # a cheap first look: most text needs no escaping


def _md_escape(text: str) -> str:
    if not _MD_MAYBE.search(text):
        return text
    return _MD_SPECIAL.sub(lambda m: "\\" + (m.group(1) or m.group(2)), text)


def _md_code(text: str, *, table: bool) -> str:
    text = " ".join(text.split("\n"))
    if table:
        text = text.replace("|", "\\|")  # GitHub splits table cells before it reads code spans
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if "`" in text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _md_url(url: str) -> str:
    return re.sub(r"[\s()<>]", lambda m: f"%{ord(m.group(0)):02X}", url)


def to_markdown(nodes: tuple[Node, ...], *, table: bool = False) -> str:
    """Markdown; line breaks stay ``\\n`` (the caller puts them where its context allows)."""
    parts: list[str] = []
    for node in nodes:
        if isinstance(node, Text):
            parts.append(_md_escape(node.text))
        elif isinstance(node, Styled):
            inner = to_markdown(node.children, table=table)
            wrap = _MD_WRAP[node.style]
            parts.append(f"{wrap}{inner}{wrap}" if inner.strip() else inner)
        elif isinstance(node, Code):
            lines = node.text.split("\n") if node.block else [node.text]
            parts.append("\n".join(_md_code(line, table=table) for line in lines if line))
        elif isinstance(node, Link):
            parts.append(f"[{_md_escape(node.label or node.url)}]({_md_url(node.url)})")
        elif isinstance(node, Mention):
            parts.append(_md_escape(node.text))
        else:
            parts.append(node.char)
    return "".join(parts)


_HTML_TAGS = {"bold": "strong", "italic": "em", "strike": "del"}


def _e(text: str) -> str:
    return str(escape(text))  # as Jinja escapes


def to_html(nodes: tuple[Node, ...]) -> str:
    parts: list[str] = []
    for node in nodes:
        if isinstance(node, Text):
            parts.append(_e(node.text).replace("\n", "<br>"))
        elif isinstance(node, Styled):
            tag = _HTML_TAGS[node.style]
            parts.append(f"<{tag}>{to_html(node.children)}</{tag}>")
        elif isinstance(node, Code):
            tag = "pre" if node.block else "code"
            parts.append(f"<{tag}>{_e(node.text)}</{tag}>")
        elif isinstance(node, Link):
            parts.append(f'<a href="{_e(node.url)}" rel="nofollow noopener noreferrer">'
                         f"{_e(node.label or node.url)}</a>")
        elif isinstance(node, Mention):
            parts.append(f'<span class="mention">{_e(node.text)}</span>')
        else:
            parts.append(node.char)
    return "".join(parts)


class Rich:
    """One piece of people's text (Slack mrkdwn), ready for every export format."""

    __slots__ = ("mrkdwn", "nodes")

    def __init__(self, mrkdwn: str, nodes: tuple[Node, ...]) -> None:
        self.mrkdwn = mrkdwn  # as stored (secrets scrubbed)
        self.nodes = nodes

    # Not cached: each export reads each form once.
    @property
    def plain(self) -> str:
        return to_plain(self.nodes)

    @property
    def markdown(self) -> str:
        """For a paragraph or a list item: on one line."""
        return " ".join(part.strip() for part in to_markdown(self.nodes).split("\n") if part.strip())

    @property
    def markdown_cell(self) -> str:
        """For a Markdown table cell: line breaks as ``<br>``."""
        text = to_markdown(self.nodes, table=True)
        if "\n" not in text:
            return text.strip() or " "
        return " <br> ".join(line for line in (part.strip() for part in text.split("\n")) if line) or " "

    @property
    def html(self) -> Markup:
        return Markup(to_html(self.nodes))

    def __str__(self) -> str:
        return self.plain

    def __bool__(self) -> bool:
        return bool(self.mrkdwn)


def plain_text(text: str | None, names: Names) -> str:
    """Slack mrkdwn as readable text: mentions become names, links ``label (url)``."""
    return to_plain(parse(text, names))


def convert(text: str | None, names: Names, scrub: Callable[[str], str] = lambda s: s) -> Rich:
    """``text`` (Slack mrkdwn) for exports: secrets scrubbed before it is read, names too."""
    source = scrub(text or "")
    return Rich(source, parse(source, names, getattr(scrub, "remembered", scrub)))  # names repeat
