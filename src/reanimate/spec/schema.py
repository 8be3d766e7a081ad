"""The JSON Schema of the spec: rendered from the pydantic models, shipped as package data.

Two committed copies, byte-identical, both equal to :func:`render`:

* ``src/reanimate/spec/schemas/spec-v1.schema.json`` — package data; ``reanimate schema`` prints
  it with importlib.resources, so the command needs neither pydantic nor the models;
* ``specs/reanimate-spec.schema.json`` — beside the specs, for editors (``# yaml-language-server:
  $schema=...``).

After changing :mod:`reanimate.spec.models`, regenerate both with
``python -m reanimate.spec.schema`` (the drift test in tests/test_cli.py fails until then).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

#: Where the packaged copy lives, relative to the ``reanimate`` package (importlib.resources).
RESOURCE = ("spec", "schemas", "spec-v1.schema.json")
#: The copy beside the specs, relative to the repository root.
REPOSITORY_COPY = Path("specs") / "reanimate-spec.schema.json"


def render() -> str:
    """``Spec.model_json_schema()`` as committed: two-space indent, newline at the end."""
    from reanimate.spec.models import Spec

    return json.dumps(Spec.model_json_schema(), indent=2) + "\n"


def packaged() -> str:
    """The schema shipped in the package (no pydantic needed)."""
    from importlib.resources import files

    return files("reanimate").joinpath(*RESOURCE).read_text(encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Write both copies from the models (run from the repository root, or give it as argv[0])."""
    from reanimate.atomic import write_text

    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0]) if args else Path.cwd()
    text = render()
    package_copy = Path(__file__).parent.joinpath(*RESOURCE[1:])
    for path in (package_copy, root / REPOSITORY_COPY):
        write_text(path, text)
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
