"""One preserved output against its rerun, in the file's own terms.

Identical bytes are "identical". Otherwise, by what the file is (its first bytes, then its
suffix):

* ROOT: every histogram (TH1) bin by bin with the validation rules of `reanimate.histcompare`
  (rtol 1e-5, or --tolerance if larger; under/overflow; one event migrating across an edge
  passes), every TTree by its entries and branches, value by value; the objects on each side;
* JSON: histogram files (``{name: {edges, contents}}``) as histograms; any other JSON key by
  key, numbers equal within the relative --tolerance (default 0: exact);
* PNG: pixel by pixel (how many pixels differ, the largest difference of a channel, 0-255);
  a difference of at most --tolerance x 255 counts as none;
* anything else (PDF, text, ...): the bytes differ, with both sizes and the first offset.

When the bytes differ but nothing does in these terms the status is "within tolerance".
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from reanimate.hashing import sha256_file

IDENTICAL, WITHIN, DIFFERS, MISSING, EXTRA = (
    "identical", "within tolerance", "differs", "missing", "extra")
MAX_DETAILS = 5


@dataclass
class FileComparison:
    status: str
    kind: str  # root, histograms, json, png, bytes
    details: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in (IDENTICAL, WITHIN)


def _kind(path: Path) -> str:
    with open(path, "rb") as handle:
        head = handle.read(8)
    if head.startswith(b"root"):
        return "root"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if path.suffix.lower() == ".json":
        return "json"
    return "bytes"


def compare_file(preserved: Path, rerun: Path, tolerance: float = 0.0) -> FileComparison:
    """`rerun` against `preserved` (the reference)."""
    if preserved.stat().st_size == rerun.stat().st_size and \
            sha256_file(preserved) == sha256_file(rerun):
        return FileComparison(IDENTICAL, _kind(preserved))
    kind = _kind(preserved)
    if kind != _kind(rerun):
        return FileComparison(DIFFERS, kind, [f"the rerun wrote a {_kind(rerun)} file, the "
                                              f"preserved one is {kind}"])
    try:
        if kind == "root":
            details = _root(preserved, rerun, tolerance)
        elif kind == "json":
            kind, details = _json(preserved, rerun, tolerance)
        elif kind == "png":
            details = _png(preserved, rerun, tolerance)
        else:
            details = _bytes(preserved, rerun)
    except Exception as exc:  # a file one side cannot read in its own terms: say so, not crash
        kind, details = "bytes", [f"cannot compare as {kind} ({type(exc).__name__}: {exc}); "
                                  + _bytes(preserved, rerun)[0]]
    return FileComparison(DIFFERS if details else WITHIN, kind, details)


def _limited(details: list[str]) -> list[str]:
    if len(details) > MAX_DETAILS:
        return details[:MAX_DETAILS] + [f"... and {len(details) - MAX_DETAILS} more"]
    return details


def _bytes(preserved: Path, rerun: Path) -> list[str]:
    a, b = preserved.stat().st_size, rerun.stat().st_size
    offset = 0
    with open(preserved, "rb") as fa, open(rerun, "rb") as fb:
        while True:
            ba, bb = fa.read(1 << 16), fb.read(1 << 16)
            if ba != bb:
                offset += next((i for i, (x, y) in enumerate(zip(ba, bb, strict=False))
                                if x != y), min(len(ba), len(bb)))
                break
            if not ba:
                break
            offset += len(ba)
    return [f"bytes differ from offset {offset} ({a} bytes preserved, {b} rerun)"]


# -- histograms and ROOT files ------------------------------------------------------------
def _histogram_details(ref: dict, other: dict, tolerance: float) -> list[str]:
    from reanimate import histcompare

    rtol = max(histcompare.RTOL, tolerance)
    details = [f"{m} (preserved vs rerun)" for m in histcompare.compare(ref, other, rtol=rtol)]
    details += [f"{name}: only in the rerun" for name in histcompare.extras(ref, other)]
    return details


def _root(preserved: Path, rerun: Path, tolerance: float) -> list[str]:
    import uproot

    from reanimate import histcompare

    details = _histogram_details(histcompare.load_root(preserved), histcompare.load_root(rerun),
                                 tolerance)
    with uproot.open(preserved) as fa, uproot.open(rerun) as fb:
        ca = {k.split(";")[0]: v for k, v in fa.classnames(recursive=False).items()}
        cb = {k.split(";")[0]: v for k, v in fb.classnames(recursive=False).items()}
        for name in sorted(set(ca) | set(cb)):
            if name not in cb:
                details.append(f"{name} ({ca[name]}): missing from the rerun")
            elif name not in ca:
                details.append(f"{name} ({cb[name]}): only in the rerun")
            elif ca[name] != cb[name]:
                details.append(f"{name}: {ca[name]} preserved, {cb[name]} rerun")
            elif ca[name] == "TTree":
                details += _tree(name, fa[name], fb[name], tolerance)
    return _limited(details)


def _tree(name: str, ta, tb, tolerance: float) -> list[str]:
    import awkward as ak
    import numpy as np

    if ta.num_entries != tb.num_entries:
        return [f"tree {name}: {ta.num_entries} entries preserved, {tb.num_entries} rerun"]
    ba, bb = set(ta.keys()), set(tb.keys())
    details = [f"tree {name}: branch {b} missing from the rerun" for b in sorted(ba - bb)]
    details += [f"tree {name}: branch {b} only in the rerun" for b in sorted(bb - ba)]
    for branch in sorted(ba & bb):
        try:
            xa, xb = ta[branch].array(library="ak"), tb[branch].array(library="ak")
        except Exception:  # a branch uproot cannot read on either side: compare its bytes
            continue
        if _ak_equal(xa, xb, tolerance):
            continue
        flat_a, flat_b = ak.flatten(xa, axis=None), ak.flatten(xb, axis=None)
        first = "?"
        if len(flat_a) == len(flat_b):
            diff = np.flatnonzero(~_close(np.asarray(flat_a), np.asarray(flat_b), tolerance))
            first = str(int(diff[0])) if len(diff) else "?"
        details.append(f"tree {name}: branch {branch} differs (first at flat index {first})")
        if len(details) > MAX_DETAILS:
            break
    return details


def _close(a, b, tolerance: float):
    import numpy as np

    if a.dtype.kind in "fc" or b.dtype.kind in "fc":
        return np.isclose(a, b, rtol=tolerance, atol=0.0, equal_nan=True)
    return a == b


def _ak_equal(a, b, tolerance: float) -> bool:
    import awkward as ak
    import numpy as np

    try:
        if len(a) != len(b):
            return False
        if a.ndim > 1 and not ak.all(ak.num(a, axis=1) == ak.num(b, axis=1)):
            return False
        fa = np.asarray(ak.flatten(a, axis=None))
        fb = np.asarray(ak.flatten(b, axis=None))
        return len(fa) == len(fb) and bool(np.all(_close(fa, fb, tolerance)))
    except Exception:  # a layout numpy cannot hold: equal only if identical as lists
        return ak.to_list(a) == ak.to_list(b)


# -- JSON ---------------------------------------------------------------------------------
def _json(preserved: Path, rerun: Path, tolerance: float) -> tuple[str, list[str]]:
    from reanimate import histcompare

    try:
        a = json.loads(preserved.read_text())
    except ValueError as exc:
        return "json", [f"the preserved file is not valid JSON ({exc})"]
    try:
        b = json.loads(rerun.read_text())
    except ValueError as exc:
        return "json", [f"the rerun's file is not valid JSON ({exc})"]
    if histcompare.is_histogram_json(a) and histcompare.is_histogram_json(b):
        ref, other = histcompare.from_json(a), histcompare.from_json(b)
        return "histograms", _limited(_histogram_details(ref, other, tolerance))
    details: list[str] = []
    _walk(a, b, "", tolerance, details)
    return "json", _limited(details)


def _number(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _walk(a, b, where: str, tolerance: float, out: list[str]) -> None:
    if len(out) > MAX_DETAILS:
        return
    here = where or "(top)"
    if isinstance(a, dict) and isinstance(b, dict):
        for key in a:
            sub = f"{where}.{key}" if where else str(key)
            if key not in b:
                out.append(f"{sub}: missing from the rerun")
            else:
                _walk(a[key], b[key], sub, tolerance, out)
        out.extend(f"{where}.{key}: only in the rerun" if where else f"{key}: only in the rerun"
                   for key in b if key not in a)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{here}: {len(a)} items preserved, {len(b)} rerun")
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            _walk(x, y, f"{where}[{i}]", tolerance, out)
    elif _number(a) and _number(b):
        if a != b and not (tolerance > 0 and math.isclose(a, b, rel_tol=tolerance)):
            out.append(f"{here}: {a!r} preserved, {b!r} rerun")
    elif a != b or type(a) is not type(b):
        out.append(f"{here}: {_short(a)} preserved, {_short(b)} rerun")


def _short(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- PNG ----------------------------------------------------------------------------------
def _pixels(path: Path):
    import numpy as np

    try:
        from PIL import Image
    except ImportError:  # matplotlib reads PNG itself (as floats 0-1)
        import matplotlib.image

        return np.rint(np.asarray(matplotlib.image.imread(str(path))) * 255).astype(int)
    with Image.open(path) as image:
        return np.asarray(image.convert("RGBA"), dtype=int)


def _png(preserved: Path, rerun: Path, tolerance: float) -> list[str]:
    import numpy as np

    a, b = _pixels(preserved), _pixels(rerun)
    if a.shape != b.shape:
        return [f"image sizes differ: {a.shape[1]}x{a.shape[0]} preserved, "
                f"{b.shape[1]}x{b.shape[0]} rerun"]
    delta = np.abs(a - b)
    over = delta > tolerance * 255
    pixels = over.reshape(over.shape[0], over.shape[1], -1).any(axis=-1) if over.ndim == 3 \
        else over
    count = int(pixels.sum())
    if count == 0:
        return []
    y, x = (int(v[0]) for v in np.nonzero(pixels))
    return [f"{count} of {pixels.size} pixels differ (largest channel difference "
            f"{int(delta.max())} of 255; first at x={x}, y={y})"]
