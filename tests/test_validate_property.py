"""Property: any mutation of a valid spec gives a valid spec or clean problems, never a crash."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reanimate.spec import validate_text
from reanimate.spec.problems import Problem

VALID = yaml.safe_load((Path(__file__).parent / "specs" / "valid" / "chain.yaml").read_text())

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                    st.text(max_size=12))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6)


def paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from paths(value, prefix + (index,))


ALL_PATHS = [p for p in paths(VALID) if p]


def mutate(spec, path, action, value):
    spec = copy.deepcopy(spec)
    parent = spec
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "replace":
        parent[last] = value
    elif action == "add" and isinstance(parent, dict):
        parent[f"{last}x"] = value
    return spec


def check_outcome(text: str) -> None:
    spec, problems = validate_text(text, "mutated.yaml")
    assert (spec is None) == bool(problems)
    for problem in problems:
        assert isinstance(problem, Problem)
        assert problem.line >= 1 and problem.column >= 1
        line = str(problem)
        assert line.startswith("mutated.yaml:") and "\n" not in line


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(ALL_PATHS), st.sampled_from(["delete", "replace", "add"]), values)
def test_structural_mutation_never_crashes(path, action, value):
    mutated = mutate(VALID, path, action, value)
    check_outcome(yaml.safe_dump(mutated, sort_keys=False))


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_random_text_never_crashes(text):
    check_outcome(text)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=400), st.text(max_size=5))
def test_corrupted_valid_text_never_crashes(position, junk):
    text = (Path(__file__).parent / "specs" / "valid" / "chain.yaml").read_text()
    check_outcome(text[:position] + junk + text[position:])
