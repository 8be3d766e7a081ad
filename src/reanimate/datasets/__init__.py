"""Sample catalogues and NanoAOD events: the schema, reading and reproducible writing.

* :mod:`reanimate.datasets.schema` — the expected branch table (frozen from the real CMS file);
* :mod:`reanimate.datasets.reading` — ``read_events`` / ``open_events_tree``, used by every stage;
* :mod:`reanimate.datasets.catalogue` — the catalogue format and its validation;
* :mod:`reanimate.datasets.writing` — reproducible NanoAOD-schema ROOT writing (uproot);

Only the catalogue is imported eagerly; the reading names are loaded on first use, so the
platform can validate and plan without numpy, awkward or uproot. Nothing here knows the AGC:
its generator, cross sections and importer live in :mod:`reanimate.analyses.agc`.
"""

from reanimate.datasets.catalogue import (
    Catalogue,
    FileEntry,
    SampleEntry,
    load_catalogue,
    resolve,
    verify_catalogue,
    write_catalogue,
)

#: Names re-exported lazily from reading (uproot, awkward), so that importing the catalogue module
#: (pydantic only) does not pay for the ROOT stack.
_READING = ("check_branches", "iterate_events", "num_entries", "open_events_tree", "read_events")


def __getattr__(name: str):
    if name in _READING:
        from reanimate.datasets import reading

        return getattr(reading, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Catalogue",
    "FileEntry",
    "SampleEntry",
    "check_branches",
    "iterate_events",
    "load_catalogue",
    "num_entries",
    "open_events_tree",
    "read_events",
    "resolve",
    "verify_catalogue",
    "write_catalogue",
]
