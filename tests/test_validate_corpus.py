"""Every malformed spec in tests/specs/invalid reports exactly the problems its comments expect.

Each file ends with lines `# expect: LINE:COL: key.path: fragment`; the fragment must appear in
the problem's message (hint included).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reanimate.errors import SpecError
from reanimate.spec import load_spec, validate_text

CORPUS = sorted((Path(__file__).parent / "specs" / "invalid").glob("*.yaml"))
EXPECT = re.compile(r"^# expect: (\d+):(\d+): (\S+): (.+)$")


def expectations(path: Path) -> list[tuple[int, int, str, str]]:
    out = []
    for line in path.read_text().splitlines():
        if m := EXPECT.match(line):
            out.append((int(m.group(1)), int(m.group(2)), m.group(3), m.group(4)))
    return out


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 25
    assert all(expectations(path) for path in CORPUS)


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_malformed_spec_reports_expected_problems(path: Path):
    with pytest.raises(SpecError) as info:
        load_spec(path)
    problems = info.value.problems
    expected = expectations(path)
    assert len(problems) == len(expected), "\n".join(map(str, problems))
    for problem, (line, column, key_path, fragment) in zip(problems, expected, strict=True):
        assert (problem.line, problem.column) == (line, column), str(problem)
        assert problem.key_path == key_path, str(problem)
        full = problem.message + (f" ({problem.hint})" if problem.hint else "")
        assert fragment in full, str(problem)
        assert str(problem).startswith(f"{path}:{line}:{column}: {key_path}: ")


def test_every_problem_reported_at_once():
    text = (CORPUS[0].parent / "13-memory-GB.yaml").read_text().replace(
        "name: demo", "name: de.mo"
    )
    _, problems = validate_text(text + "  b:\n    command: [x]\n    container: nope\n")
    keys = {p.key_path for p in problems}
    assert {"metadata.name", "steps.a.resources.memory", "steps.b.container"} <= keys
