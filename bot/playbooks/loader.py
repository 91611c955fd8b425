"""Load and validate the playbook folder (``$PLAYBOOKS_DIR``, SPEC §5).

Layout (``.yml`` is accepted wherever ``.yaml`` is; having both is an error):

``services/<name>.yaml``
    One file per service; the file name must equal its ``name``. The folder may
    be missing or empty: incidents still work, ``/rollback`` has nothing to do.
``escalation.yaml``
    Required: without it nobody would ever be paged, so a missing file is an error.
``oncall.yaml``
    Optional: without it there are no rotations, and any ``oncall:`` target is
    reported as naming an unknown rotation.

Every problem of every file is collected before :class:`PlaybookError` is raised.
Each reads ``<file>:<line>:<column>: <where>: <what>``, e.g.::

    playbooks/services/api.yaml:7:9: provider.type: must be one of render, railway, vercel, heroku, github-actions (got 'netlify')

Lines come from the YAML node marks: the document is composed, the nodes are
kept, and each pydantic error location is followed down the node tree (to the
key itself for unknown or invalid keys, to the enclosing mapping for a missing
key). Besides the model rules, the loader checks duplicate keys, that a service
file is named after its service, and that every ``oncall:`` target names a
rotation of ``oncall.yaml``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.playbooks import models
from bot.playbooks.models import (
    EscalationMatrix,
    LocatedValueError,
    Rotation,
    RotationsFile,
    ServicePlaybook,
)
from bot.playbooks.targets import Target, TargetKind

__all__ = ["PlaybookError", "Playbooks", "Problem", "load_playbooks"]

_Model = TypeVar("_Model", bound=BaseModel)
Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in one playbook file (``line`` and ``column`` are 1-based)."""

    path: Path
    line: int | None
    column: int | None
    message: str

    def __str__(self) -> str:
        position = f":{self.line}" if self.line else ""
        if self.line and self.column:
            position += f":{self.column}"
        return f"{self.path}{position}: {self.message}"


class PlaybookError(Exception):
    """The playbooks are invalid; ``problems`` lists everything that is wrong."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        count = len(problems)
        heading = f"{count} problem{'s' if count != 1 else ''} in the playbooks:"
        super().__init__("\n".join([heading, *(f"  {problem}" for problem in problems)]))


@dataclass(frozen=True, slots=True)
class Playbooks:
    """Everything in the playbook folder, validated; services sorted by name."""

    directory: Path
    services: Mapping[str, ServicePlaybook]
    escalation: EscalationMatrix
    rotations: Mapping[str, Rotation]


def load_playbooks(directory: str | Path) -> Playbooks:
    """Load ``directory``; raise :class:`PlaybookError` with every problem found."""
    root = Path(directory)
    if not root.is_dir():
        raise PlaybookError([Problem(root, None, None, "playbook folder not found (see PLAYBOOKS_DIR)")])
    problems: list[Problem] = []

    escalation_path, oncall_path = _find(root, "escalation", problems), _find(root, "oncall", problems)
    if escalation_path is None:
        problems.append(Problem(root / "escalation.yaml", None, None,
                                "missing: it defines the severities and who is paged, so it is required"))
    escalation_doc = _read(escalation_path, problems) if escalation_path else None
    oncall_doc = _read(oncall_path, problems) if oncall_path else None
    service_docs = [_read(path, problems) for path in _service_files(root, problems)]

    escalation = _validate(EscalationMatrix, escalation_doc, problems)
    oncall = _validate(RotationsFile, oncall_doc, problems)
    services: dict[str, ServicePlaybook] = {}
    for doc in service_docs:
        service = _validate(ServicePlaybook, doc, problems)
        if doc is not None:
            problems.extend(_file_name_problems(doc))
        if service is not None:
            services[service.name] = service

    if escalation_doc is not None and (oncall_path is None or oncall_doc is not None):
        problems.extend(_unknown_rotation_problems(escalation_doc, _rotation_names(oncall_doc)))

    if problems or escalation is None:
        raise PlaybookError(sorted(problems, key=lambda p: (str(p.path), p.line or 0, p.column or 0)))
    return Playbooks(
        directory=root,
        services=dict(sorted(services.items())),
        escalation=escalation,
        rotations=dict(oncall.rotations) if oncall else {},
    )


# --- reading YAML with positions ---------------------------------------------------


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The safe loader (libyaml's when available) reading ``10:30`` as text, not as the
    YAML 1.1 base-60 number 630, and turning a constructor failure (``2026-02-30``)
    into a YAML error with a position."""

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (yaml.YAMLError, RecursionError):
            raise
        except Exception as exc:  # a scalar its tag cannot read (`!!int x`, `!!timestamp`)
            raise ConstructorError(
                None, None, f"cannot read {node.value!r} as {node.tag.rsplit(':', 1)[-1]}: {exc}",
                node.start_mark,
            ) from exc


# The YAML 1.1 int and float patterns of PyYAML, minus their base-60 forms.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if not tag.endswith((":int", ":float"))]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"""^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"""),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"""
        r"""|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"""
    ),
    list("-+0123456789."),
)


@dataclass(frozen=True, slots=True)
class _Document:
    path: Path
    root: Node | None
    data: Any


def _read(path: Path, problems: list[Problem]) -> _Document | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(path, None, None, f"cannot read the file: {exc}"))
        return None
    loader: _Loader | None = None
    try:
        loader = _Loader(text)
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        problems.append(Problem(path, line, column, f"YAML: character {exc.character:#x} is not allowed"))
        return None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        problems.append(Problem(path, line, column, f"YAML syntax: {what}"))
        return None
    except yaml.YAMLError as exc:
        problems.append(Problem(path, None, None, f"YAML: {exc}"))
        return None
    except RecursionError:
        problems.append(Problem(path, None, None, "YAML: nested too deeply"))
        return None
    finally:
        if loader is not None:
            loader.dispose()
    if root is not None and _expanded_size(root) > MAX_VALUES:
        # Aliases of aliases ("billion laughs") expand exponentially: validating that would
        # take hours and all the memory, so the file is refused before anything reads it.
        problems.append(Problem(path, None, None, f"YAML: its aliases (*name) expand to more than "
                                                  f"{MAX_VALUES:,} values; write the values out"))
        return None
    problems.extend(_duplicate_key_problems(path, root))
    return _Document(path, root, data)


MAX_VALUES = 100_000  # a playbook file has hundreds


def _expanded_size(root: Node) -> int:
    """How many nodes the document has once every alias is replaced by what it names
    (capped just past MAX_VALUES; a node that contains itself counts once)."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        children = ([n for pair in node.value for n in pair] if isinstance(node, MappingNode)
                    else list(node.value) if isinstance(node, SequenceNode) else [])
        if children_done:
            open_.discard(id(node))
            sizes[id(node)] = min(MAX_VALUES + 1, 1 + sum(sizes.get(id(c), 1) for c in children))
        elif id(node) not in sizes and id(node) not in open_:
            open_.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in children)
    return sizes[id(root)]


def _find(root: Path, stem: str, problems: list[Problem]) -> Path | None:
    """``<stem>.yaml`` or ``<stem>.yml`` (having both is a problem; the .yaml one is read)."""
    found = [path for path in (root / f"{stem}.yaml", root / f"{stem}.yml") if path.is_file()]
    if len(found) > 1:
        problems.append(Problem(found[1], None, None, f"both {found[0].name} and {found[1].name} exist: keep one"))
    return found[0] if found else None


def _service_files(root: Path, problems: list[Problem]) -> list[Path]:
    folder = root / "services"
    if not folder.is_dir():
        return []
    files = sorted(
        path for path in folder.iterdir()
        if path.suffix in (".yaml", ".yml") and path.is_file() and not path.name.startswith(".")
    )
    stems = [path.stem for path in files]
    for path in files:
        if path.suffix == ".yml" and stems.count(path.stem) > 1:
            problems.append(Problem(path, None, None, f"both {path.stem}.yaml and {path.name} exist: keep one"))
    return [path for path in files if not (path.suffix == ".yml" and stems.count(path.stem) > 1)]


def _duplicate_key_problems(path: Path, root: Node | None) -> Iterator[Problem]:
    seen: set[int] = set()
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            first_line: dict[str, int] = {}
            for key, value in node.value:
                if isinstance(key, ScalarNode) and key.value in first_line:
                    yield Problem(
                        path, key.start_mark.line + 1, key.start_mark.column + 1,
                        f"duplicate key {key.value!r} (first at line {first_line[key.value]})",
                    )
                elif isinstance(key, ScalarNode):
                    first_line[key.value] = key.start_mark.line + 1
                stack.extend((key, value))
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)


# --- validation errors mapped to lines ----------------------------------------------


def _validate(model: type[_Model], doc: _Document | None, problems: list[Problem]) -> _Model | None:
    if doc is None:
        return None
    if doc.data is None:
        problems.append(Problem(doc.path, None, None, "the file is empty"))
        return None
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        # Listing every one of thousands of errors (a file of junk keys) helps nobody, and
        # placing each on its line is linear in the mapping: quadratic in all.
        problems.extend(_problem_from(doc, error) for error in errors[:MAX_PROBLEMS_PER_FILE])
        if len(errors) > MAX_PROBLEMS_PER_FILE:
            problems.append(Problem(doc.path, None, None, f"{len(errors) - MAX_PROBLEMS_PER_FILE:,} more "
                                                          f"problems besides the {MAX_PROBLEMS_PER_FILE} listed"))
        return None


MAX_PROBLEMS_PER_FILE = 100


def _problem_from(doc: _Document, error: Mapping[str, Any]) -> Problem:
    loc = _without_union_tags(doc.data, tuple(error["loc"]))
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    exception = ctx.get("error")
    point_at_key = False
    if isinstance(exception, LocatedValueError):
        loc += exception.where
        message = str(exception)
    elif kind == "value_error":
        message = str(exception) if exception else error["msg"].removeprefix("Value error, ")
    elif kind == "missing":
        message = "required key is missing"
    elif kind == "extra_forbidden":
        point_at_key = True
        close = difflib.get_close_matches(str(loc[-1]), _KNOWN_KEYS, n=1)
        message = "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
    elif kind == "union_tag_invalid":
        loc += ("type",)
        message = f"must be one of {', '.join(models.PROVIDER_TYPES)} (got {ctx.get('tag')!r})"
    elif kind == "union_tag_not_found":
        message = f"'type' is missing: one of {', '.join(models.PROVIDER_TYPES)}"
    elif kind in ("enum", "literal_error"):
        expected = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        message = f"must be one of {expected} (got {value!r})"
    elif kind in ("model_type", "dict_type", "model_attributes_type") and not loc:
        message = f"expected a mapping of keys at the top of the file (got {type(value).__name__})"
    else:
        message = error["msg"][:1].lower() + error["msg"][1:]
        if isinstance(value, (str, int, float, bool)) and len(repr(value)) < 80:
            message += f" (got {value!r})"
        elif isinstance(value, (list, dict)):
            message += f" (got a {'list' if isinstance(value, list) else 'mapping'})"
    if loc and loc[-1] == "[key]":
        loc, point_at_key = loc[:-1], True
    node = _node_at(doc.root, loc, key=point_at_key)
    where = _dotted(loc)
    line, column = (node.start_mark.line + 1, node.start_mark.column + 1) if node else (None, None)
    return Problem(doc.path, line, column, f"{where}: {message}" if where else message)


def _without_union_tags(data: Any, loc: Loc) -> Loc:
    """Drop the discriminator tag pydantic inserts into locations (``provider.render.x``)."""
    kept: list[str | int] = []
    for part in loc:
        if isinstance(data, dict) and part not in data and data.get("type") == part:
            continue
        kept.append(part)
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            data = None
    return tuple(kept)


def _node_at(root: Node | None, loc: Loc, *, key: bool) -> Node | None:
    """The deepest node along ``loc``; with ``key``, the key node of the last part."""
    node = root
    for position, part in enumerate(loc):
        last = position == len(loc) - 1
        if isinstance(node, MappingNode):
            pairs = [pair for pair in node.value if isinstance(pair[0], ScalarNode) and pair[0].value == str(part)]
            if not pairs:
                return node
            node = pairs[-1][0] if key and last else pairs[-1][1]
        elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
        else:
            return node
    return node


def _dotted(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


_KNOWN_KEYS = sorted(
    {
        field.alias or name
        for model in vars(models).values()
        if isinstance(model, type) and issubclass(model, BaseModel)
        for name, field in model.model_fields.items()
    }
)


# --- checks across files ------------------------------------------------------------


def _file_name_problems(doc: _Document) -> list[Problem]:
    name = doc.data.get("name") if isinstance(doc.data, dict) else None
    if not isinstance(name, str) or name == doc.path.stem:
        return []
    node = _node_at(doc.root, ("name",), key=False)
    line, column = (node.start_mark.line + 1, node.start_mark.column + 1) if node else (None, None)
    return [
        Problem(doc.path, line, column,
                f"name: {name!r} does not match the file name: rename the file to {name}{doc.path.suffix} "
                f"or write name: {doc.path.stem}")
    ]


def _rotation_names(doc: _Document | None) -> set[str] | None:
    """Rotation names as written (even when a rotation is invalid); None without oncall.yaml."""
    if doc is None:
        return None
    rotations = doc.data.get("rotations") if isinstance(doc.data, dict) else None
    return {str(name) for name in rotations} if isinstance(rotations, dict) else set()


def _unknown_rotation_problems(doc: _Document, rotations: set[str] | None) -> Iterator[Problem]:
    matrix = doc.data.get("escalation") if isinstance(doc.data, dict) else None
    if not isinstance(matrix, dict):
        return
    known = (
        f"oncall.yaml defines {', '.join(sorted(rotations))}" if rotations
        else "oncall.yaml defines no rotations" if rotations is not None
        else "there is no oncall.yaml"
    )
    for severity, levels in matrix.items():
        for index, level in enumerate(levels if isinstance(levels, list) else []):
            notify = level.get("notify") if isinstance(level, dict) else None
            for position, text in enumerate(notify if isinstance(notify, list) else []):
                try:
                    target = Target.parse(text)
                except ValueError:
                    continue  # reported by validation
                if target.kind is TargetKind.ONCALL and target.value not in (rotations or set()):
                    loc: Loc = ("escalation", str(severity), index, "notify", position)
                    node = _node_at(doc.root, loc, key=False)
                    line, column = (node.start_mark.line + 1, node.start_mark.column + 1) if node else (None, None)
                    yield Problem(doc.path, line, column,
                                  f"{_dotted(loc)}: unknown rotation {target.value!r} ({known})")
