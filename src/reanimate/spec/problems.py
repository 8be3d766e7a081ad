"""A spec problem and its one-line form `FILE:LINE:COL: path.to.key: message (hint)`."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from reanimate.spec.yaml_source import Loc


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    column: int
    loc: Loc
    message: str
    hint: str | None = None

    @property
    def key_path(self) -> str:
        return dotted(self.loc)

    def __str__(self) -> str:
        hint = f" ({self.hint})" if self.hint else ""
        line = f"{self.file}:{self.line}:{self.column}: {self.key_path}: {self.message}{hint}"
        return " ".join(line.split("\n"))  # one problem, one line, whatever the message


def dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def did_you_mean(word: str, choices: list[str]) -> str | None:
    close = difflib.get_close_matches(str(word), choices, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None
