"""Load YAML while remembering where every key and value came from.

PyYAML's composer keeps a start mark on each node; we walk the node tree once and record the
(line, column) of every mapping key and every value under its key path, so that any problem
found later (by pydantic or by the reference checks) can point at the exact place in the file.

A spec is untrusted text, so the loader bounds what the text can make it do, each refusal a
located error: nesting deeper than MAX_DEPTH, aliases that expand to more than ALIAS_BUDGET
nodes in all (a "billion laughs" bomb of nested aliases) or refer to themselves, integers
outside 64 bits (Python refuses to read or print ints of more than 4300 digits), and values a
constructor cannot build (a timestamp such as 2001-13-45).
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


#: Deepest nesting of mappings and sequences a spec may have (a real spec needs about 6).
MAX_DEPTH = 64
#: Nodes that aliases may add to the document, in total, once expanded.
ALIAS_BUDGET = 10_000
#: A spec integer fits in 64 bits (CWL's long, JSON readers' safe range of int64).
INT_RANGE = (-(2**63), 2**63 - 1)


def _at(mark: yaml.Mark | None) -> Position:
    return Position(mark.line + 1, mark.column + 1) if mark else Position(1, 1)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (see _record), deep nesting and alias bombs.

    Each composed node's size once its aliases are expanded is kept, so that an alias costs
    the size of what it stands for, counted when it is met, before anything walks it.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._sizes: dict[int, int] = {}  # id(node) -> its size with aliases expanded
        self._heights: dict[int, int] = {}  # id(node) -> its height with aliases expanded
        self._aliased = 0  # nodes added by aliases so far

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            node = self.anchors.get(event.anchor)
            if node is not None:  # an undefined alias: PyYAML's own located error
                size = self._sizes.get(id(node))
                if size is None:
                    raise YamlSyntaxError(
                        f"alias *{event.anchor} refers to the node that contains it "
                        "(a recursive alias)", _at(event.start_mark))
                if self._depth + self._heights[id(node)] > MAX_DEPTH:
                    raise YamlSyntaxError(
                        f"nesting deeper than {MAX_DEPTH} levels once alias *{event.anchor} "
                        "is expanded", _at(event.start_mark))
                self._aliased += size
                if self._aliased > ALIAS_BUDGET:
                    raise YamlSyntaxError(
                        f"YAML aliases expand to more than {ALIAS_BUDGET} values (an alias "
                        "bomb?); write the values out or use fewer aliases",
                        _at(event.start_mark))
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise YamlSyntaxError(f"nesting deeper than {MAX_DEPTH} levels",
                                      _at(self.peek_event().start_mark))
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        children: list = []
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        self._sizes[id(node)] = 1 + sum(self._sizes.get(id(c), 1) for c in children)
        self._heights[id(node)] = 1 + max((self._heights.get(id(c), 1) for c in children),
                                          default=0)
        return node

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError, TypeError) as exc:
            detail = " ".join(str(exc).split()) or type(exc).__name__
            raise YamlSyntaxError(f"cannot read the value {_short(node)}: {detail}",
                                  _at(node.start_mark)) from None

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        try:
            value = super().construct_yaml_int(node)
        except ValueError:  # more than 4300 decimal digits
            value = None
        if value is None or not INT_RANGE[0] <= value <= INT_RANGE[1]:
            raise YamlSyntaxError(
                f"integer {_short(node)} is out of range: a spec integer fits in 64 bits "
                "(quote it if it is text)", _at(node.start_mark))
        return value


_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:int", _UniqueKeyLoader.construct_yaml_int)


def _short(node: yaml.Node) -> str:
    text = node.value if isinstance(node.value, str) else f"<{node.id}>"
    return repr(text if len(text) <= 40 else f"{text[:20]}...{text[-10:]}")


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
        if exc.context_mark and any(end in (exc.problem or "")
                                    for end in ("<stream end>", "end of stream")):
            mark = exc.context_mark  # an unclosed bracket or quote: point where it was opened
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
