"""The wheels an image installs, gathered on the host (the build itself downloads nothing).

* PyPI wheels: ``pip download`` of the pinned requirements into the cache's ``wheelhouse/``,
  for the image's platform whatever the host is; a wheel already there is reused once its
  sha256 matches its pin (hashes memoised by file stat, like the engines' input hashes).
* The reanimate wheel: built from the source checkout with pinned setuptools and wheel
  (``containers/build-requirements.txt``, in a virtual environment of the cache), from a
  temporary copy of the sources (so no build/ or *.egg-info appears in the repository), with
  ``SOURCE_DATE_EPOCH`` fixed and file modes normalised: the same sources give the same wheel
  bytes. Wheels are kept by source digest (``wheels/reanimate/DIGEST/``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from reanimate.containers.cache import cache_dir, file_lock
from reanimate.containers.requirements import (
    BUILD_REQUIREMENTS,
    Pin,
    index_url,
    parse,
    pip_command,
    target_args,
)
from reanimate.errors import ReanimateError
from reanimate.hashing import HashMemo, sha256_file

Progress = Callable[[str], None]
#: 1980-01-01T00:00:00Z, the earliest time a zip file records: the reanimate wheel's clock
SOURCE_DATE_EPOCH = 315532800
#: what of the checkout goes into the wheel (setuptools, src layout)
SOURCE_FILES = ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in", "setup.cfg", "setup.py")
SKIP_DIRS = {"__pycache__", "build", "dist"}


def wheelhouse() -> Path:
    return cache_dir("wheelhouse")


def ensure_wheels(pins: list[Pin], progress: Progress | None = None) -> dict[str, Path]:
    """Every pinned wheel in the wheelhouse, checked: file name → path."""
    say = progress or (lambda _line: None)
    house = wheelhouse()
    with file_lock("wheelhouse"):
        memo = HashMemo(house / ".hashes.json")
        missing = []
        for pin in pins:
            path = house / pin.filename
            if path.is_file() and memo.sha256(path) == pin.sha256:
                continue
            path.unlink(missing_ok=True)  # absent, or not the pinned bytes
            missing.append(pin)
        if missing:
            say(f"wheelhouse: downloading {len(missing)} of {len(pins)} wheels into {house}")
            _download(missing, house, say)
            for pin in missing:
                path = house / pin.filename
                if not path.is_file():
                    raise ReanimateError(f"wheelhouse: pip did not fetch {pin.filename}")
                if memo.sha256(path) != pin.sha256:
                    path.unlink()
                    raise ReanimateError(f"wheelhouse: {pin.filename} does not match its pin "
                                         f"sha256 {pin.sha256}")
        else:
            say(f"wheelhouse: all {len(pins)} wheels present in {house}")
        memo.save()
    return {pin.filename: house / pin.filename for pin in pins}


def _download(pins: list[Pin], house: Path, say: Progress) -> None:
    with tempfile.TemporaryDirectory(prefix="reanimate-download-") as tmp:
        reqs = Path(tmp) / "requirements.txt"
        reqs.write_text("".join(f"{p.name}=={p.version} --hash=sha256:{p.sha256}\n"
                                for p in pins))
        cmd = [*pip_command(), "download", "--no-deps", "--require-hashes", "--progress-bar",
               "off", "--index-url", index_url(), *target_args(), "-d", str(house),
               "-r", str(reqs)]
        tail: list[str] = []
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              errors="replace") as proc:
            for line in proc.stdout:
                line = line.strip()
                if line:
                    tail = [*tail[-4:], line]
                    if line.startswith("Downloading "):
                        say(f"wheelhouse: {line}")
        if proc.returncode != 0:
            raise ReanimateError(f"pip download failed (exit {proc.returncode}): "
                                 f"{'; '.join(tail)[:500]}")


# -- the reanimate wheel -----------------------------------------------------------------------
def source_files(root: Path) -> list[Path]:
    """The checkout's files that make the wheel: pyproject and friends, and src/ (no caches)."""
    files = [root / name for name in SOURCE_FILES if (root / name).is_file()]
    for folder, dirs, names in os.walk(root / "src"):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info"))
        files += [Path(folder) / n for n in sorted(names) if not n.endswith((".pyc", ".pyo"))]
    return files


def source_digest(root: Path, build_pins: str) -> str:
    """What the wheel's bytes depend on: the source files, the build tools, the clock."""
    digest = hashlib.sha256(f"{SOURCE_DATE_EPOCH}\n{build_pins}\n".encode())
    for file in source_files(root):
        rel = file.relative_to(root).as_posix()
        digest.update(f"{rel}\0{sha256_file(file)}\n".encode())
    return digest.hexdigest()


def reanimate_wheel(root: Path, progress: Progress | None = None) -> tuple[Path, str]:
    """(path, sha256) of the reanimate wheel of the checkout at `root`, built if not cached."""
    say = progress or (lambda _line: None)
    build_reqs = root / BUILD_REQUIREMENTS
    if not build_reqs.is_file():
        raise ReanimateError(f"{build_reqs} is missing; run `reanimate containers requirements "
                             "SPEC`")
    key = source_digest(root, build_reqs.read_text())
    folder = cache_dir("wheels", "reanimate") / key
    with file_lock(f"wheel-{key[:16]}"):
        found = sorted(folder.glob("reanimate-*.whl")) if folder.is_dir() else []
        if found:
            say(f"wheel: {found[0].name} from the cache (sources {key[:12]})")
            return found[0], sha256_file(found[0])
        python = _build_env(build_reqs, say)
        with tempfile.TemporaryDirectory(prefix="reanimate-wheel-",
                                         dir=cache_dir("containers")) as tmp:
            source, out = Path(tmp) / "source", Path(tmp) / "out"
            for file in source_files(root):
                target = source / file.relative_to(root)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(file, target)
                os.chmod(target, 0o644)
            env = {**os.environ, "SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH),
                   "PYTHONHASHSEED": "0"}
            # this interpreter's pip, run by the build environment's python (--python)
            cmd = [*pip_command(), "--python", str(python), "wheel", "--no-deps",
                   "--no-build-isolation", "--no-index", "--quiet", "-w", str(out), str(source)]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
            built = sorted(out.glob("reanimate-*.whl"))
            if proc.returncode != 0 or len(built) != 1:
                lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
                raise ReanimateError(f"building the reanimate wheel failed: "
                                     f"{'; '.join(lines[-3:])[:400]}")
            folder.mkdir(parents=True, exist_ok=True)
            final = folder / built[0].name
            shutil.move(built[0], str(final) + ".partial")
            os.replace(str(final) + ".partial", final)
        say(f"wheel: built {final.name} (sources {key[:12]})")
        return final, sha256_file(final)


def _build_env(build_reqs: Path, say: Progress) -> Path:
    """The python of a virtual environment with the pinned setuptools and wheel (made once)."""
    text = build_reqs.read_text()
    env = cache_dir("containers") / f"wheel-build-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
    python, done = env / "bin" / "python", env / ".complete"
    if done.exists():
        return python
    pins = parse(build_reqs)
    wheels = ensure_wheels(pins, say)
    say(f"wheel: making the build environment {env}")
    shutil.rmtree(env, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True,
                   capture_output=True)
    # pip of this interpreter installs into the new environment (it has none of its own)
    cmd = [*pip_command(), "--python", str(python), "install", "--no-index", "--no-deps",
           "--require-hashes", "--quiet", "--find-links", str(wheelhouse()),
           "-r", str(build_reqs)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not wheels:
        raise ReanimateError(f"making the wheel-building environment failed: "
                             f"{proc.stderr.strip()[-400:]}")
    done.write_text(text)
    return python
