"""SIGNAL, the `--signal` argument of `reanimate reinterpret`, parsed into what it names.

* ``RECIPE[:key=value,...]`` — a generator recipe of the spec's ``reinterpretation.recipes``;
* a catalogue: a folder holding ``catalogue.json``, or a catalogue ``.json`` file;
* event files in the input schema: ``a.root[,b.root]@xsec_pb=0.4`` (a cross section is needed);
* signal histograms, for users with their own simulation: ``histograms:FILE`` (``.root`` or
  ``.json``), or a ``.root``/``.json`` file recognised as histograms by its content.

Only light imports here; uproot is imported to look into a ``.root`` file given bare.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from reanimate.errors import ReanimateError

RECIPE = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*)(?::(.*))?$")
HISTOGRAMS_PREFIX = "histograms:"


@dataclass(frozen=True)
class Signal:
    kind: str  # "recipe" | "catalogue" | "files" | "histograms"
    text: str  # SIGNAL as given
    recipe: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)  # recipe key -> value as written
    paths: tuple[str, ...] = ()  # absolute paths (catalogue JSON, event files, histograms)
    xsec_pb: float | None = None

    def label_values(self) -> dict[str, object]:
        """Labels of the signal point: the recipe's parameters as given (numbers when they read
        as numbers); none for files and histograms."""
        if self.kind == "recipe":
            return {k: _number(v) for k, v in self.parameters.items()}
        return {}


def _number(text: str) -> object:
    try:
        value = float(text)
    except ValueError:
        return text
    if not math.isfinite(value):
        return text
    return int(value) if value.is_integer() and re.fullmatch(r"[+-]?\d+", text) else value


def parse_signal(text: str, recipes: list[str] | dict) -> Signal:
    """SIGNAL -> Signal; ReanimateError (one line) for anything it cannot be."""
    if not isinstance(text, str) or not text.strip():
        raise ReanimateError("--signal: empty; give RECIPE:key=value,..., a catalogue, "
                             "FILE.root@xsec_pb=X or histograms:FILE")
    text = text.strip()
    if text.startswith(HISTOGRAMS_PREFIX):
        path = _existing(text[len(HISTOGRAMS_PREFIX):], "signal histograms")
        if path.suffix not in (".root", ".json"):
            raise ReanimateError(f"--signal {text}: signal histograms must be a .root or .json "
                                 "file")
        return Signal("histograms", text, paths=(str(path),))
    if "@" in text:
        return _files(text)
    match = RECIPE.match(text)
    if match and not Path(text).exists() and "." not in match.group(1):
        return _recipe(text, match.group(1), match.group(2), list(recipes))
    path = _existing(text, "signal")
    if path.is_dir():
        catalogue = path / "catalogue.json"
        if not catalogue.is_file():
            raise ReanimateError(f"--signal {text}: a folder without catalogue.json")
        return Signal("catalogue", text, paths=(str(catalogue),))
    if path.suffix == ".json":
        kind = _json_kind(path)
        return Signal(kind, text, paths=(str(path),))
    if path.suffix == ".root":
        if _root_has_histograms(path):
            return Signal("histograms", text, paths=(str(path),))
        raise ReanimateError(f"--signal {text}: event files need a cross section: write "
                             f"{text}@xsec_pb=X (or give a catalogue)")
    raise ReanimateError(f"--signal {text}: not a recipe, catalogue, .root file or histograms")


def _recipe(text: str, name: str, rest: str | None, recipes: list[str]) -> Signal:
    if name not in recipes:
        known = ", ".join(recipes) or "none"
        raise ReanimateError(f"--signal {text}: unknown recipe {name!r} (the spec's recipes: "
                             f"{known})")
    parameters: dict[str, str] = {}
    for item in (rest or "").split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", key) or not value:
            raise ReanimateError(f"--signal {text}: {item.strip()!r} is not key=value")
        if key in parameters:
            raise ReanimateError(f"--signal {text}: {key} given twice")
        parameters[key] = value
    return Signal("recipe", text, recipe=name, parameters=parameters)


def _files(text: str) -> Signal:
    files, _, options = text.rpartition("@")
    key, sep, value = options.partition("=")
    if key.strip() != "xsec_pb" or not sep:
        raise ReanimateError(f"--signal {text}: after '@' write xsec_pb=X (the cross section "
                             "in pb)")
    try:
        xsec = float(value)
    except ValueError:
        xsec = math.nan
    if not (math.isfinite(xsec) and xsec > 0):
        raise ReanimateError(f"--signal {text}: xsec_pb must be a positive number, got "
                             f"{value!r}")
    paths = [_existing(p, "signal file") for p in files.split(",") if p.strip()]
    if not paths:
        raise ReanimateError(f"--signal {text}: no file before '@'")
    for path in paths:
        if path.suffix != ".root":
            raise ReanimateError(f"--signal {text}: {path.name} is not a .root file")
    return Signal("files", text, paths=tuple(str(p) for p in paths), xsec_pb=xsec)


def _existing(text: str, what: str) -> Path:
    path = Path(text.strip()).expanduser()
    if not text.strip():
        raise ReanimateError(f"--signal: empty {what} path")
    if not path.exists():
        raise ReanimateError(f"--signal: {what} {text.strip()} not found")
    return path.resolve()


def _json_kind(path: Path) -> str:
    """"catalogue" or "histograms", by content."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ReanimateError(f"--signal: {path} is not readable JSON ({exc})") from None
    if not isinstance(data, dict) or not data:
        raise ReanimateError(f"--signal: {path} is neither a catalogue nor histograms")
    first = next(iter(data.values()))
    if isinstance(first, dict) and first and all(
            isinstance(v, dict) and "files" in v for v in first.values()):
        return "catalogue"
    return "histograms"


def _root_has_histograms(path: Path) -> bool:
    import uproot

    try:
        with uproot.open(path) as handle:
            classes = handle.classnames()
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's
        raise ReanimateError(f"--signal: {path} is not a readable ROOT file ({exc})") from None
    kinds = set(classes.values())
    return any(k.startswith("TH1") for k in kinds) and "TTree" not in kinds
