"""Sample catalogues and NanoAOD events: the schema, reading, writing, generation and import.

* :mod:`reanimate.datasets.schema` — the expected branch table (frozen from the real CMS file);
* :mod:`reanimate.datasets.reading` — ``read_events`` / ``open_events_tree``, used by every stage;
* :mod:`reanimate.datasets.catalogue` — our catalogue format, its validation, the AGC import;
* :mod:`reanimate.datasets.writing` — reproducible NanoAOD-schema ROOT writing (uproot);
* :mod:`reanimate.datasets.commands` — ``reanimate datasets generate`` / ``import-agc``.

The physics of the generator lives in :mod:`reanimate.steps.agc.generate`.
"""

from reanimate.datasets.catalogue import (
    Catalogue,
    FileEntry,
    SampleEntry,
    import_agc,
    load_catalogue,
    resolve,
    verify_catalogue,
    write_catalogue,
)
from reanimate.datasets.reading import (
    check_branches,
    iterate_events,
    num_entries,
    open_events_tree,
    read_events,
)

__all__ = [
    "Catalogue",
    "FileEntry",
    "SampleEntry",
    "check_branches",
    "import_agc",
    "iterate_events",
    "load_catalogue",
    "num_entries",
    "open_events_tree",
    "read_events",
    "resolve",
    "verify_catalogue",
    "write_catalogue",
]
