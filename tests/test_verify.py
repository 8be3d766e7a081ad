"""`reanimate verify`: the small AGC chain's bundle reruns with its own code to the same bytes;
a bundle whose preserved outputs were changed is named file by file, bin by bin, key by key;
hostile archives are refused with one line and leave nothing behind."""

from __future__ import annotations

import io
import json
import os
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
from bundle_helpers import cli, rewrite_bundle, small_run

from reanimate.preserve.compare import compare_file


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return small_run(tmp_path_factory)


def outputs_of(bundle: Path) -> list[str]:
    with zipfile.ZipFile(bundle) as zf:
        return sorted(n for n in zf.namelist() if n.startswith("outputs/"))


def test_verify_reruns_with_the_bundles_code_to_identical_outputs(small, tmp_path):
    keep = tmp_path / "verify"
    res = cli("verify", small.bundle, "--json", "--keep", keep)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    report = json.loads(res.stdout)
    assert report["status"] == "identical" and report["ok"]
    # the rerun imported reanimate from the unpacked wheel, not from this checkout
    assert Path(report["code"]).resolve().is_relative_to((keep / "code").resolve())
    assert report["code_in_bundle"] and report["engine"] == "local"
    assert report["spec"] == "analysis/specs/agc-small.yaml"
    assert [o["path"] for o in report["outputs"]] == outputs_of(small.bundle)
    assert {o["status"] for o in report["outputs"]} == {"identical"}
    assert (keep / "bundle" / "analysis" / "specs" / "agc-small.yaml").is_file()
    prov = json.loads((keep / "work" / "runs" / "latest" / "provenance.json").read_text())
    assert prov["spec"] == str((keep / "bundle" / report["spec"]).resolve())
    assert all(s["status"] == "executed" for s in prov["steps"])


def _tampered_histograms(original: bytes, tmp_path: Path) -> tuple[bytes, str, int]:
    """histograms.root rewritten with one bin of one histogram raised by 1000 events."""
    import uproot

    source = tmp_path / "original.root"
    source.write_bytes(original)
    target = tmp_path / "histograms.root"
    with uproot.open(source) as fin, uproot.recreate(target) as fout:
        names = sorted(k.split(";")[0] for k, c in fin.classnames().items() if c.startswith("TH1"))
        chosen = next(n for n in names if n.endswith("4j1b_ttbar"))
        for name in names:
            h = fin[name].to_hist()
            if name == chosen:
                view = h.view(flow=True)
                index = int(np.flatnonzero(view.value > 0)[0])
                weight = view.variance[index] / view.value[index]
                view.value[index] += 1000 * weight
                view.variance[index] += 1000 * weight * weight
            fout[name] = h
    return target.read_bytes(), chosen, index


def _tampered_model(original: bytes) -> tuple[bytes, str]:
    """workspace.json with one digit of the first observation changed (still valid JSON)."""
    doc = json.loads(original)
    value = doc["observations"][0]["data"][0]
    text = original.decode()
    at = text.index('"observations"')
    at = text.index(repr(value) if isinstance(value, float) else str(value), at)
    digit = next(i for i in range(at, at + 20) if text[i] in "12345678")
    changed = text[:digit] + str(int(text[digit]) + 1) + text[digit + 1:]
    assert json.loads(changed) != doc
    return changed.encode(), "observations[0].data[0]"


def _tampered_png(original: bytes) -> bytes:
    from PIL import Image

    image = Image.open(io.BytesIO(original))
    image.load()
    pixel = image.getpixel((3, 3))
    image.putpixel((3, 3), tuple(255 - c for c in pixel[:3]) + tuple(pixel[3:]))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_verify_names_what_differs_in_the_files_own_terms(small, tmp_path):
    """One histogram bin, one number of the model, one pixel and a PDF byte changed (their
    digests fixed, so inspect passes); rerun through cwltool on the bundle's own CWL."""
    with zipfile.ZipFile(small.bundle) as zf:
        read = zf.read
        hist_bytes, chosen, index = _tampered_histograms(
            read("outputs/histograms/histograms.root"), tmp_path)
        model, key = _tampered_model(read("outputs/statmodel/statmodel/workspace.json"))
        png = _tampered_png(read("outputs/plots/plots/pulls.png"))
        pdf = read("outputs/plots/plots/pulls.pdf") + b"\n"
    tampered = rewrite_bundle(small.bundle, tmp_path / "tampered.crate.zip", {
        "outputs/histograms/histograms.root": hist_bytes,
        "outputs/statmodel/statmodel/workspace.json": model,
        "outputs/plots/plots/pulls.png": png,
        "outputs/plots/plots/pulls.pdf": pdf,
    })
    assert cli("bundle", "inspect", tampered).returncode == 0
    res = cli("verify", tampered, "--engine", "cwl")
    assert res.returncode == 1, res.stdout[-3000:] + res.stderr[-3000:]
    lines = res.stdout.splitlines()

    def line(member: str) -> str:
        found = [ln for ln in lines if ln.startswith(f"differs: {member}: ")]
        assert found, f"{member} not named in:\n{res.stdout}"
        return found[0]

    assert f"{chosen}: contents differ in 1 bin(s): bin {index} (" in line(
        "outputs/histograms/histograms.root")
    assert f"{key}: " in line("outputs/statmodel/statmodel/workspace.json")
    assert "1 of " in line("outputs/plots/plots/pulls.png") and "pixels differ" in line(
        "outputs/plots/plots/pulls.png")
    assert "bytes differ from offset" in line("outputs/plots/plots/pulls.pdf")
    assert sum(ln.startswith("differs: outputs/") for ln in lines) == 4
    assert lines[-1].startswith("differs: ") and "4 differs" in lines[-1]


def test_a_digest_that_does_not_match_is_refused_before_the_rerun(small, tmp_path):
    bad = rewrite_bundle(small.bundle, tmp_path / "bad.crate.zip",
                         {"outputs/fit/fit/fit_results.json": b"{}"}, fix_metadata=False)
    keep = tmp_path / "out" / "verify"
    res = cli("verify", bad, "--keep", keep)
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert res.returncode == 2 and len(errors) == 1, res.stderr
    assert errors[0] == res.stderr.strip().splitlines()[-1]  # after the progress line
    assert "outputs/fit/fit/fit_results.json: sha256" in errors[0]
    assert not keep.exists() and list((tmp_path / "out").iterdir()) == []


# -- hostile archives: one line, exit 2, nothing written ---------------------------------------
def _zip(path: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ro-crate-metadata.json", b'{"@graph": []}')
        for info, data in members:
            zf.writestr(info, data)
    return path


def _symlink(name: str, target: bytes) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target


def hostile(tmp_path: Path, small) -> dict[str, tuple[Path, str, tuple]]:
    """name -> (archive, what the refusal says, extra options)."""
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(small.bundle.read_bytes()[: small.bundle.stat().st_size // 2])
    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(os.urandom(4096))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        duplicate = _zip(tmp_path / "duplicate.zip", [("a.txt", b"1"), ("a.txt", b"2")])
    return {
        "truncated": (corrupt, "not a readable zip", ()),
        "garbage": (garbage, "not a readable zip", ()),
        "dotdot": (_zip(tmp_path / "dotdot.zip", [("outputs/../../evil.txt", b"x")]),
                   "unsafe member name", ()),
        "absolute": (_zip(tmp_path / "absolute.zip", [("/tmp/evil.txt", b"x")]),
                     "unsafe member name", ()),
        "symlink": (_zip(tmp_path / "symlink.zip", [_symlink("outputs/link", b"/etc/passwd")]),
                    "is a symbolic link", ()),
        "duplicate": (duplicate, "appears twice", ()),
        "bomb": (_zip(tmp_path / "bomb.zip", [("outputs/zeros.bin", bytes(64 * 1024 * 1024))]),
                 "a zip bomb", ()),
        "too large": (small.bundle, "over the limit", ("--max-size", "100kB")),
        "too much unpacked": (small.bundle, "more than 1000000 bytes unpacked",
                              ("--max-unpacked", "1MB")),
    }


@pytest.fixture(scope="module")
def archives(tmp_path_factory, small):
    return hostile(tmp_path_factory.mktemp("hostile"), small)


@pytest.mark.parametrize("case", ["truncated", "garbage", "dotdot", "absolute", "symlink",
                                  "duplicate", "bomb", "too large", "too much unpacked"])
def test_hostile_archives_are_refused_with_one_line(archives, case, tmp_path):
    archive, says, options = archives[case]
    parent = tmp_path / "parent"
    parent.mkdir()
    (parent / "before.txt").write_text("here before\n")
    listing = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    for args in (("verify", archive, "--keep", parent / "target", *options),
                 ("bundle", "inspect", archive, *options)):
        res = cli(*args, cwd=parent)
        assert res.returncode == 2, (case, args[0], res.stdout, res.stderr)
        assert res.stderr.strip().count("\n") == 0 and says in res.stderr, (case, res.stderr)
        assert "Traceback" not in res.stderr
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == listing
    assert not Path("/tmp/evil.txt").exists()


# -- comparison in the file's own terms, file by file ------------------------------------------
def test_json_numbers_within_tolerance_and_keys(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({"poi": {"value": 1.0, "error": 0.1}, "names": ["x", "y"]}))
    b.write_text(json.dumps({"poi": {"value": 1.0 + 1e-9, "error": 0.1}, "names": ["x", "y"]},
                            indent=1))
    assert compare_file(a, b).status == "differs"
    assert compare_file(a, b).details == ["poi.value: 1.0 preserved, 1.000000001 rerun"]
    assert compare_file(a, b, tolerance=1e-6).status == "within tolerance"
    b.write_text(json.dumps({"poi": {"value": 1.0, "error": 0.1}, "names": ["x", "z"], "n": 1}))
    assert compare_file(a, b).details == ['names[1]: "y" preserved, "z" rerun',
                                          "n: only in the rerun"]
    a.write_bytes(b.read_bytes())
    assert compare_file(a, b).status == "identical"


def test_histograms_within_the_validation_rules(tmp_path):
    import uproot

    edges = np.linspace(0, 10, 11)
    values = np.arange(1.0, 11.0) * 100
    with uproot.recreate(tmp_path / "a.root") as f:
        f["h"] = (values, edges)
    with uproot.recreate(tmp_path / "b.root") as f:
        f["h"] = (values * (1 + 1e-7), edges)  # within rtol 1e-5
    with uproot.recreate(tmp_path / "c.root") as f:
        f["h"] = (values * 1.01, edges)
    assert compare_file(tmp_path / "a.root", tmp_path / "b.root").status == "within tolerance"
    cmp = compare_file(tmp_path / "a.root", tmp_path / "c.root")
    assert cmp.status == "differs" and cmp.kind == "root"
    assert cmp.details[0].startswith("h: contents differ in 10 bin(s): bin 1 ([0, 1)): 100 vs 101")
    assert compare_file(tmp_path / "a.root", tmp_path / "c.root", 0.02).status == \
        "within tolerance"


def test_png_by_pixels(tmp_path):
    from PIL import Image

    image = Image.new("RGBA", (20, 10), (10, 20, 30, 255))
    image.save(tmp_path / "a.png")
    image.save(tmp_path / "b.png", compress_level=1)  # other bytes, same pixels
    assert compare_file(tmp_path / "a.png", tmp_path / "b.png").status == "within tolerance"
    image.putpixel((5, 2), (200, 20, 30, 255))
    image.save(tmp_path / "c.png")
    cmp = compare_file(tmp_path / "a.png", tmp_path / "c.png")
    assert cmp.details == ["1 of 200 pixels differ (largest channel difference 190 of 255; "
                           "first at x=5, y=2)"]
