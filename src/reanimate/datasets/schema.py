"""The NanoAOD branches reanimate reads, frozen from the real CMS 2015 AGC file.

Derived once with uproot from ``shared/data/nanoAOD_2015_CMS_Open_Data_ttbar.root`` (tree
``Events``): the interpretation of every branch that the AGC selection, the ML inference and the
ML training read (docs/agc-analysis.md §1). Jagged branches are ``AsJagged(AsDtype(...))`` whose
TLeaf is counted by the ``n<Collection>`` leaf (``Jet_pt[nJet]``); counters, ``run`` and
``luminosityBlock`` are big-endian ``uint32``, ``event`` is ``uint64``. The generator writes
exactly this table and the reader refuses any file that disagrees with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BranchSpec:
    """One expected branch: name, big-endian numpy dtype string, and its counter (jagged only)."""

    name: str
    dtype: str
    counter: str | None = None

    @property
    def jagged(self) -> bool:
        return self.counter is not None

    @property
    def interpretation(self) -> str:
        """The repr of the uproot interpretation of this branch in the real files."""
        flat = f"AsDtype({np.dtype(self.dtype).str if self.dtype != 'bool' else 'bool'!r})"
        return f"AsJagged({flat})" if self.jagged else flat


#: Collection → (field → big-endian dtype), in the order the generator writes them.
COLLECTIONS: dict[str, dict[str, str]] = {
    "Electron": {
        "pt": ">f4",
        "eta": ">f4",
        "phi": ">f4",
        "mass": ">f4",
        "cutBased": ">i4",
        "sip3d": ">f4",
    },
    "Muon": {
        "pt": ">f4",
        "eta": ">f4",
        "phi": ">f4",
        "mass": ">f4",
        "tightId": "bool",
        "sip3d": ">f4",
        "pfRelIso04_all": ">f4",
    },
    "Jet": {
        "pt": ">f4",
        "eta": ">f4",
        "phi": ">f4",
        "mass": ">f4",
        "btagCSVV2": ">f4",
        "jetId": ">i4",
        "qgl": ">f4",
    },
    "GenPart": {
        "pt": ">f4",
        "eta": ">f4",
        "phi": ">f4",
        "mass": ">f4",
        "pdgId": ">i4",
        "genPartIdxMother": ">i4",
        "statusFlags": ">i4",
    },
}

#: Mantissa bits NanoAOD keeps for float branches (``precision=N`` in the NanoAOD producers),
#: measured on the real file; other float branches keep all 23 bits. ``Muon_pfRelIso04_all`` is
#: rounded to 0.001 in the AGC files instead (see :data:`DECIMALS`).
PRECISION_BITS: dict[str, int] = {
    "Electron_eta": 12,
    "Electron_phi": 12,
    "Electron_mass": 10,
    "Electron_sip3d": 10,
    "Muon_eta": 12,
    "Muon_phi": 12,
    "Muon_mass": 10,
    "Muon_sip3d": 10,
    "Jet_pt": 10,
    "Jet_eta": 12,
    "Jet_phi": 12,
    "Jet_mass": 10,
    "Jet_btagCSVV2": 10,
    "Jet_qgl": 10,
    "GenPart_pt": 8,
    "GenPart_eta": 8,
    "GenPart_phi": 8,
    "GenPart_mass": 8,
}
DECIMALS: dict[str, int] = {"Muon_pfRelIso04_all": 3}

#: Per-event scalars (besides the collection counters).
SCALARS: dict[str, str] = {"run": ">u4", "luminosityBlock": ">u4", "event": ">u8"}

#: Counter dtype in the real files (TLeafI, unsigned).
COUNTER_DTYPE = ">u4"


def reduce_mantissa(values: np.ndarray, bits: int) -> np.ndarray:
    """float32 values rounded to ``bits`` mantissa bits, exactly as CMS's
    ``MiniFloatConverter::reduceMantissaToNbitsRounding`` (no carry into the exponent)."""
    shift = 23 - bits
    raw = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    mantissa = (raw & np.uint32(0x7FFFFF)) >> np.uint32(shift)
    round_up = (raw & np.uint32(1 << (shift - 1))) != 0
    mantissa = np.where(round_up & (mantissa < (1 << bits) - 1), mantissa + np.uint32(1), mantissa)
    out = (raw & np.uint32(0xFF800000)) | (mantissa.astype(np.uint32) << np.uint32(shift))
    return out.view(np.float32)


def _table() -> dict[str, BranchSpec]:
    table: dict[str, BranchSpec] = {}
    for name, dtype in SCALARS.items():
        table[name] = BranchSpec(name, dtype)
    for coll, fields in COLLECTIONS.items():
        counter = f"n{coll}"
        table[counter] = BranchSpec(counter, COUNTER_DTYPE)
        for field, dtype in fields.items():
            table[f"{coll}_{field}"] = BranchSpec(f"{coll}_{field}", dtype, counter)
    return table


#: Every branch reanimate reads, by name.
BRANCHES: dict[str, BranchSpec] = _table()

def expected(name: str) -> BranchSpec | None:
    """The expected spec of branch ``name``, or None for branches reanimate does not check."""
    return BRANCHES.get(name)
