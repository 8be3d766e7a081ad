"""Load YAML while remembering where every key and value came from.

PyYAML's composer keeps a start mark on each node; we walk the node tree once and record the
(line, column) of every mapping key and every value under its key path, so that any problem
found later (by pydantic or by the reference checks) can point at the exact place in the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Position:
    line: int  # 1-based
    column: int  # 1-based


@dataclass
class YamlSource:
    """Parsed YAML data plus a map from key path to the position of its key and its value."""

    path: str
    data: Any
    key_positions: dict[Loc, Position] = field(default_factory=dict)
    value_positions: dict[Loc, Position] = field(default_factory=dict)

    def position(self, loc: Loc, *, prefer_key: bool = True) -> Position:
        """Best position for `loc`: the key itself, else its value, else the nearest parent."""
        loc = tuple(loc)
        while True:
            table = (self.key_positions, self.value_positions)
            if not prefer_key:
                table = table[::-1]
            for positions in table:
                if loc in positions:
                    return positions[loc]
            if not loc:
                return Position(1, 1)
            loc = loc[:-1]


class YamlSyntaxError(Exception):
    def __init__(self, message: str, position: Position) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of silently keeping the last one."""


def _mark(node: yaml.Node) -> Position:
    return Position(node.start_mark.line + 1, node.start_mark.column + 1)


def _record(node: yaml.Node, loc: Loc, src: YamlSource) -> None:
    src.value_positions[loc] = _mark(node)
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, Position] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            if key in seen:
                first = seen[key]
                raise YamlSyntaxError(
                    f"duplicate key {key!r} (first defined at line {first.line})", _mark(key_node)
                )
            seen[key] = _mark(key_node)
            src.key_positions[loc + (key,)] = _mark(key_node)
            _record(value_node, loc + (key,), src)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            src.key_positions[loc + (index,)] = _mark(item)
            _record(item, loc + (index,), src)


def parse_yaml(text: str, path: str = "<string>") -> YamlSource:
    """Parse YAML text; raise YamlSyntaxError with the position of the first syntax error."""
    src = YamlSource(path=path, data=None)
    try:
        loader = _UniqueKeyLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return src
            _record(node, (), src)
            src.data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if exc.context_mark and "<stream end>" in (exc.problem or ""):
            mark = exc.context_mark  # an unclosed bracket: point where it was opened
        pos = Position(mark.line + 1, mark.column + 1) if mark else Position(1, 1)
        message = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        raise YamlSyntaxError(f"YAML syntax error: {message}", pos) from None
    except yaml.YAMLError as exc:  # e.g. a reader error on bad bytes
        position = getattr(exc, "position", None)  # a reader error: offending character
        detail = " ".join(str(exc).split())
        pos = Position(1, 1)
        if isinstance(position, int):
            before = text[:position]
            pos = Position(before.count("\n") + 1, position - before.rfind("\n"))
        raise YamlSyntaxError(f"YAML error: {detail}", pos) from None
    return src


def load_yaml_file(path: str | Path) -> YamlSource:
    text = Path(path).read_text(encoding="utf-8")
    return parse_yaml(text, str(path))
