"""A signal's JSON Patch as a HEPData/pyhf PatchSet, applied to the preserved workspace.

The PatchSet (pyhf's patchset schema 1.0.0) holds one patch, whose metadata name and values
identify the signal point, and the sha256 digest (pyhf.utils.digest) of the workspace it
applies to, so that `pyhf patchset apply` and `reanimate limits --patchset` refuse it on any
other workspace. HEPData's schema wants an INSPIRE reference: the spec's metadata.references
give one when they hold an inspirehep.net literature address (or `inspire:NNNNNNN`), else
`ins0000000` stands for "no INSPIRE record".
"""

from __future__ import annotations

import copy
import re

from reanimate.errors import ReanimateError

NO_INSPIRE = "ins0000000"
INSPIRE = re.compile(r"(?:inspirehep\.net/(?:literature|record)/|inspire:)(\d{1,7})\b")


def safe_name(text: str) -> str:
    """A patch or label name pyhf accepts (letters, digits and '_')."""
    out = re.sub(r"[^A-Za-z0-9_]+", "_", str(text)).strip("_")
    return out or "signal"


def inspire_reference(references: list[str]) -> str:
    for ref in references or []:
        match = INSPIRE.search(str(ref))
        if match:
            return f"ins{int(match.group(1)):07d}"
    return NO_INSPIRE


def make_patchset(workspace: dict, ops: list, *, name: str, labels: dict,
                  description: str, references: list[str] | None = None,
                  extra: dict | None = None) -> dict:
    """The PatchSet of one patch `ops` (RFC 6902) for `workspace`."""
    import pyhf

    if not isinstance(ops, list) or not all(isinstance(op, dict) for op in ops):
        raise ReanimateError("the patch program wrote no JSON Patch (a list of operations)")
    names = [safe_name(k) for k in labels] or ["signal"]
    values = list(labels.values()) or [name]
    metadata = {
        "description": description,
        "digests": {"sha256": pyhf.utils.digest(workspace)},
        "labels": names,
        "references": {"hepdata": inspire_reference(references or [])},
        **(extra or {}),
    }
    patchset = {"metadata": metadata, "version": "1.0.0",
                "patches": [{"metadata": {"name": safe_name(name), "values": values},
                             "patch": ops}]}
    check_patchset(patchset)
    return patchset


def check_patchset(patchset: dict) -> None:
    import pyhf

    try:
        pyhf.PatchSet(copy.deepcopy(patchset))
    except (pyhf.exceptions.InvalidSpecification, pyhf.exceptions.InvalidPatchSet) as exc:
        reason = " ".join(str(exc).split())[:300]
        raise ReanimateError(f"not a valid pyhf PatchSet: {reason}") from None


def apply_patchset(workspace: dict, patchset: dict) -> dict:
    """The workspace with the PatchSet's (only) patch applied, its digest checked first."""
    import pyhf

    ps = pyhf.PatchSet(copy.deepcopy(patchset))
    try:
        patched = ps.apply(copy.deepcopy(workspace), ps.patches[0].name)
    except pyhf.exceptions.PatchSetVerificationError as exc:
        raise ReanimateError(f"the PatchSet does not belong to this workspace: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - jsonpatch's errors: a patch that does not apply
        raise ReanimateError(f"the patch does not apply to the workspace: {exc}") from None
    return _plain(patched)


def _plain(value):
    """pyhf.Workspace (a dict subclass) and its contents as plain JSON data."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def patched_hs3(workspace: dict, axes: dict[str, list[float]] | None) -> dict:
    """The HS3 document of the patched workspace (reanimate.statistics.hs3)."""
    from reanimate.statistics.hs3 import pyhf_to_hs3

    return pyhf_to_hs3(workspace, axes=axes)


def hs3_axes(hs3_doc: dict, workspace: dict) -> dict[str, list[float]]:
    """Bin edges per channel, read from the preserved HS3 document (its data, channel order)."""
    axes: dict[str, list[float]] = {}
    data = hs3_doc.get("data") if isinstance(hs3_doc, dict) else None
    if not isinstance(data, list):
        return axes
    for channel, datum in zip(workspace.get("channels", []), data, strict=False):
        try:
            edges = datum["axes"][0]["edges"]
        except (KeyError, IndexError, TypeError):
            continue
        if len(edges) == len(channel["samples"][0]["data"]) + 1:
            axes[channel["name"]] = [float(e) for e in edges]
    return axes
