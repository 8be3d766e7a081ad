"""Remote inputs as facilities serve them: XRootD and nginx on 127.0.0.1 serving generated AGC
samples, read by the histogram stage (fetched and checked when the catalogue has a sha256, read
in place by uproot when it has none), and every failure (wrong digest, missing file, a server
that never answers, a refused connection) one line naming the URL with exit code 2.

The servers are real daemons (tests/remote_servers.py); nothing is mocked. Each subprocess runs
under a hard time limit, so a hang fails the test instead of blocking the suite; no assertion
is made on how long anything took.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from remote_servers import (
    NGINX,
    OPENSSL,
    XROOTD,
    NginxServer,
    SilentServer,
    XRootDServer,
    free_port,
    served_folder,
)

from reanimate.datasets import remote
from reanimate.errors import DigestMismatch, ReanimateError

pytestmark = pytest.mark.skipif(
    not (os.path.exists(XROOTD) and os.path.exists(NGINX)),
    reason="needs Debian's xrootd-server (/usr/bin/xrootd) and nginx-light (/usr/sbin/nginx)",
)

STAGE = "reanimate.analyses.agc.steps.histograms"
RUN_LIMIT_S = 240  # a hung stage fails the test rather than the suite
SHORT_TIMEOUT_S = "2"  # $REANIMATE_REMOTE_TIMEOUT for the never-answering server


# --- the samples, the servers and the local reference ---------------------------------------


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> Path:
    """Generated AGC samples (2000 ttbar-nominal events, seed 1), with their catalogue."""
    from reanimate.analyses.agc.generate import generate

    out = tmp_path_factory.mktemp("samples")
    generate(out, events=2000, seed=1)
    return out


@pytest.fixture(scope="module")
def served(samples) -> Path:
    with served_folder() as folder:
        for file in samples.glob("*.root"):
            shutil.copy(file, folder / file.name)
        yield folder


@pytest.fixture(scope="module")
def xrootd(served):
    with XRootDServer(served) as server:
        yield server


@pytest.fixture(scope="module")
def nginx(served):
    with NginxServer(served) as server:
        yield server


@pytest.fixture(autouse=True)
def input_cache(tmp_path, monkeypatch) -> Path:
    """Each test gets its own input cache (never the user's ~/.cache)."""
    cache = tmp_path / "input-cache"  # (its locks/ folder appears on the first fetch)
    monkeypatch.setenv(remote.CACHE_ENV, str(cache))
    monkeypatch.delenv(remote.TIMEOUT_ENV, raising=False)
    return cache


def run_stage(samples_dir: Path, out: Path, **env: str) -> subprocess.CompletedProcess:
    """The histogram stage as the engines run it: its program, in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", STAGE, "--samples", str(samples_dir), "--histograms", str(out),
         "--no_progress", "true", "--dask_workers", "1"],
        capture_output=True, text=True, timeout=RUN_LIMIT_S, env={**os.environ, **env},
    )


@pytest.fixture(scope="module")
def local_histograms(samples, tmp_path_factory) -> bytes:
    out = tmp_path_factory.mktemp("local") / "histograms.root"
    proc = run_stage(samples, out)
    assert proc.returncode == 0, proc.stderr
    return out.read_bytes()


def remote_catalogue(samples: Path, folder: Path, url, with_sha256: bool,
                     change=None) -> Path:
    """A copy of the samples' catalogue in ``folder`` whose paths are ``url(file name)``.

    ``change(entry)`` may edit one file entry (the first ttbar nominal file) afterwards.
    """
    doc = json.loads((samples / "catalogue.json").read_text())
    for variations in doc.values():
        for sample in variations.values():
            for entry in sample["files"]:
                entry["path"] = url(entry["path"])
                if not with_sha256:
                    entry["sha256"] = None
    if change is not None:
        change(doc["ttbar"]["nominal"]["files"][0])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "catalogue.json").write_text(json.dumps(doc, indent=2))
    return folder


def cached_files(cache: Path) -> list[Path]:
    return sorted(p for p in (cache / "sha256").rglob("*") if p.is_file())


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: python -m {STAGE}: ")
    return lines[0]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- the histogram stage on remote catalogues -------------------------------------------------


@pytest.mark.parametrize("with_sha256", [True, False], ids=["fetched", "in-place"])
def test_stage_over_xrootd_gives_the_local_bytes(
    samples, xrootd, local_histograms, tmp_path, input_cache, with_sha256
):
    folder = remote_catalogue(samples, tmp_path / "cat", xrootd.url, with_sha256)
    out = tmp_path / "histograms.root"
    proc = run_stage(folder, out)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == local_histograms
    cached = cached_files(input_cache)
    if with_sha256:  # every file fetched into the cache under its digest, read-only
        assert {p.name for p in cached} == {sha256_of(f) for f in samples.glob("*.root")
                                            if not f.name.startswith("zprime")}
        assert all(p.stat().st_mode & 0o222 == 0 for p in cached)
    else:
        assert cached == []


@pytest.mark.parametrize("with_sha256", [True, False], ids=["fetched", "in-place"])
def test_stage_over_http_gives_the_local_bytes(
    samples, nginx, local_histograms, tmp_path, input_cache, with_sha256
):
    folder = remote_catalogue(samples, tmp_path / "cat", nginx.url, with_sha256)
    file = "ttbar__nominal__000.root"
    before = len(nginx.requests(file))
    out = tmp_path / "histograms.root"
    proc = run_stage(folder, out)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == local_histograms
    requests = nginx.requests(file)[before:]
    if with_sha256:  # one whole-file download, then local reads only
        assert [(m, s, r) for m, _, s, r in requests] == [("GET", 200, "")]
        assert sha256_of(samples / file) in {p.name for p in cached_files(input_cache)}
    else:  # uproot's HTTP source: range requests only, nothing cached
        assert requests and all(s == 206 and r.startswith("bytes=") for _, _, s, r in requests)
        assert cached_files(input_cache) == []


def test_a_cached_input_is_not_fetched_again(samples, local_histograms, tmp_path, input_cache):
    """Second run, same digests: served from the cache; the server's copy may even be gone."""
    with served_folder() as folder:
        for file in samples.glob("*.root"):
            shutil.copy(file, folder / file.name)
        with XRootDServer(folder) as xrd, NginxServer(folder) as web:
            first = remote_catalogue(samples, tmp_path / "web", web.url, True)
            assert run_stage(first, tmp_path / "a" / "histograms.root").returncode == 0
            served_requests = len(web.requests())
            proc = run_stage(first, tmp_path / "b" / "histograms.root")
            assert proc.returncode == 0, proc.stderr
            assert len(web.requests()) == served_requests  # not one request more
            assert (tmp_path / "b" / "histograms.root").read_bytes() == local_histograms
            # the xrootd server holds no file at all now: every read is a cache hit
            for file in folder.glob("*.root"):
                file.unlink()
            again = remote_catalogue(samples, tmp_path / "xrd", xrd.url, True)
            proc = run_stage(again, tmp_path / "c" / "histograms.root")
            assert proc.returncode == 0, proc.stderr
            assert (tmp_path / "c" / "histograms.root").read_bytes() == local_histograms


@pytest.mark.parametrize("scheme", ["root", "http"])
def test_a_wrong_sha256_is_one_line_and_nothing_is_cached(
    samples, xrootd, nginx, tmp_path, input_cache, scheme
):
    server = xrootd if scheme == "root" else nginx
    wrong = sha256_of(samples / "wjets__nominal__000.root")
    folder = remote_catalogue(samples, tmp_path / "cat", server.url, True,
                              change=lambda entry: entry.update(sha256=wrong))
    line = one_error_line(run_stage(folder, tmp_path / "histograms.root"))
    assert server.url("ttbar__nominal__000.root") in line
    assert f"differs from the expected {wrong}" in line
    assert sha256_of(samples / "ttbar__nominal__000.root") in line  # what was actually fetched
    assert cached_files(input_cache) == []  # neither the bad file nor one fetched before it
    assert not (tmp_path / "histograms.root").exists()


@pytest.mark.parametrize("with_sha256", [True, False], ids=["fetched", "in-place"])
@pytest.mark.parametrize("scheme", ["root", "http"])
def test_a_missing_remote_file_is_one_line(
    samples, xrootd, nginx, tmp_path, input_cache, scheme, with_sha256
):
    server = xrootd if scheme == "root" else nginx
    missing = server.url("no_such_file.root")
    folder = remote_catalogue(samples, tmp_path / "cat", server.url, with_sha256,
                              change=lambda entry: entry.update(path=missing))
    line = one_error_line(run_stage(folder, tmp_path / "histograms.root"))
    assert missing in line
    if scheme == "http":
        assert "404" in line
    else:
        assert "no such file" in line
    assert cached_files(input_cache) == []


@pytest.mark.parametrize("with_sha256", [True, False], ids=["fetched", "in-place"])
@pytest.mark.parametrize("scheme", ["root", "http"])
def test_a_server_that_never_answers_times_out(
    samples, tmp_path, input_cache, scheme, with_sha256
):
    with SilentServer() as silent:
        url = f"{scheme}://127.0.0.1:{silent.port}/{'/' if scheme == 'root' else ''}data/f.root"
        digest = sha256_of(samples / "ttbar__nominal__000.root") if with_sha256 else None
        folder = remote_catalogue(
            samples, tmp_path / "cat", lambda name: str(samples / name), True,
            change=lambda entry: entry.update(path=url, sha256=digest),
        )
        proc = run_stage(folder, tmp_path / "histograms.root",
                         REANIMATE_REMOTE_TIMEOUT=SHORT_TIMEOUT_S)
    line = one_error_line(proc)
    assert url in line
    assert f"timed out (no answer for {SHORT_TIMEOUT_S} s" in line
    assert cached_files(input_cache) == []


@pytest.mark.parametrize("with_sha256", [True, False], ids=["fetched", "in-place"])
@pytest.mark.parametrize("scheme", ["root", "http"])
def test_a_refused_connection_is_one_line(samples, tmp_path, scheme, with_sha256):
    port = free_port()  # nothing listens there
    url = f"{scheme}://127.0.0.1:{port}/{'/' if scheme == 'root' else ''}data/f.root"
    digest = sha256_of(samples / "ttbar__nominal__000.root") if with_sha256 else None
    folder = remote_catalogue(
        samples, tmp_path / "cat", lambda name: str(samples / name), True,
        change=lambda entry: entry.update(path=url, sha256=digest),
    )
    proc = run_stage(folder, tmp_path / "histograms.root", REANIMATE_REMOTE_TIMEOUT=SHORT_TIMEOUT_S)
    line = one_error_line(proc)
    assert url in line
    assert "onnection refused" in line


def test_an_invalid_timeout_setting_is_one_line(samples, nginx, tmp_path):
    folder = remote_catalogue(samples, tmp_path / "cat", nginx.url, False)
    proc = run_stage(folder, tmp_path / "histograms.root", REANIMATE_REMOTE_TIMEOUT="soon")
    line = one_error_line(proc)
    assert "$REANIMATE_REMOTE_TIMEOUT='soon'" in line


# --- fetch and the cache, called directly (the bundle's large inputs use them) ----------------


@pytest.mark.parametrize("scheme", ["root", "http"])
def test_fetch_streams_verifies_and_reports_progress(samples, xrootd, nginx, tmp_path, scheme):
    server = xrootd if scheme == "root" else nginx
    name = "wjets__nominal__000.root"
    seen: list[tuple[int, int | None]] = []
    dest = remote.fetch(server.url(name), sha256_of(samples / name), tmp_path / "out" / "w.root",
                        progress=lambda done, total: seen.append((done, total)))
    assert dest.read_bytes() == (samples / name).read_bytes()
    size = (samples / name).stat().st_size
    assert seen[-1] == (size, size)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["w.root"]  # no temporary left


@pytest.mark.parametrize("scheme", ["root", "http"])
def test_fetch_with_a_wrong_digest_keeps_nothing(samples, xrootd, nginx, tmp_path, scheme):
    server = xrootd if scheme == "root" else nginx
    url = server.url("wjets__nominal__000.root")
    out = tmp_path / "out"
    out.mkdir()
    dest = out / "w.root"
    with pytest.raises(DigestMismatch) as info:
        remote.fetch(url, "0" * 64, dest)
    assert str(info.value).startswith(f"{url}: sha256 ")
    assert "\n" not in str(info.value)
    assert list(out.iterdir()) == []
    dest.write_bytes(b"the old file")  # a present destination stays as it was
    with pytest.raises(DigestMismatch):
        remote.fetch(url, "0" * 64, dest)
    assert dest.read_bytes() == b"the old file"
    assert sorted(p.name for p in out.iterdir()) == ["w.root"]


def test_fetch_without_digest_and_a_present_destination(samples, nginx, tmp_path):
    name = "single_top_tW__nominal__000.root"
    url, digest = nginx.url(name), sha256_of(samples / name)
    dest = remote.fetch(url, None, tmp_path / "x.root")
    assert sha256_of(dest) == digest
    before = len(nginx.requests(name))
    remote.fetch(url, digest, dest)  # already holds those bytes: no download
    assert len(nginx.requests(name)) == before
    remote.fetch(url, None, dest)  # no digest: nothing to trust, downloaded again
    assert len(nginx.requests(name)) == before + 1


def test_fetch_errors_name_the_url(nginx, xrootd, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    not_found = r"^http://127\.0\.0\.1:\d+/nope\.root: no such file on the server \(HTTP 404 "
    with pytest.raises(ReanimateError, match=not_found):
        remote.fetch(nginx.url("nope.root"), None, out / "n")
    with pytest.raises(ReanimateError, match=r"^root://.*/nope\.root: no such file on the server"):
        remote.fetch(xrootd.url("nope.root"), None, out / "n")
    port = free_port()
    for scheme in ("http", "root"):
        url = f"{scheme}://127.0.0.1:{port}//x.root"
        with pytest.raises(ReanimateError, match=r"connection refused|Connection refused") as info:
            remote.fetch(url, None, out / "n")
        assert str(info.value).startswith(url)
    with SilentServer() as silent:
        for scheme in ("http", "root"):
            url = f"{scheme}://127.0.0.1:{silent.port}//x.root"
            with pytest.raises(ReanimateError, match=r"timed out \(no answer for 1 s") as info:
                remote.fetch(url, None, out / "n", timeout=1)
            assert str(info.value).startswith(url)
    with pytest.raises(ReanimateError, match="not a http, https, root URL"):
        remote.fetch("s3://bucket/key", None, out / "n")
    assert list(out.iterdir()) == []


def test_cache_layout_location_and_repair(samples, nginx, tmp_path, input_cache, monkeypatch):
    name = "ttbar__scaleup__000.root"
    url, digest = nginx.url(name), sha256_of(samples / name)
    path = remote.cached(url, digest)
    assert path == input_cache / "sha256" / digest[:2] / digest
    assert path.read_bytes() == (samples / name).read_bytes()
    memo = json.loads((input_cache / "hashes.json").read_text())  # recorded while streaming
    assert memo[str(path.resolve())][1] == digest
    count = len(nginx.requests(name))
    assert remote.cached(url, digest) == path and len(nginx.requests(name)) == count
    # a cache entry changed on disk is refused by the memo and fetched again
    path.chmod(0o644)
    path.write_bytes(b"damaged")
    assert remote.cached(url, digest).read_bytes() == (samples / name).read_bytes()
    assert len(nginx.requests(name)) == count + 1
    # the folder: given, else $REANIMATE_INPUT_CACHE, else $XDG_CACHE_HOME/reanimate/inputs
    assert remote.cache_path(digest, tmp_path / "given") == (
        tmp_path / "given" / "sha256" / digest[:2] / digest)
    monkeypatch.delenv(remote.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert remote.cache_root() == tmp_path / "xdg" / "reanimate" / "inputs"


def test_two_fetchers_of_one_file_download_it_once(samples, nginx, tmp_path, input_cache):
    name = "single_top_t_chan__nominal__000.root"
    url, digest = nginx.url(name), sha256_of(samples / name)
    code = ("import sys; from reanimate.datasets.remote import cached; "
            "print(cached(sys.argv[1], sys.argv[2]))")
    before = len(nginx.requests(name))
    procs = [subprocess.Popen([sys.executable, "-c", code, url, digest], stdout=subprocess.PIPE,
                              text=True, env=os.environ.copy()) for _ in range(4)]
    outs = [p.communicate(timeout=RUN_LIMIT_S)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0] * 4
    assert set(outs) == {str(input_cache / "sha256" / digest[:2] / digest)}
    assert [s for _, _, s, _ in nginx.requests(name)[before:]] == [200]


@pytest.mark.skipif(not os.path.exists(OPENSSL), reason="needs openssl for the certificate")
def test_https_with_a_self_signed_server(samples, tmp_path, monkeypatch):
    """https: refused without the server's certificate, fetched and read in place with it."""
    name = "ttbar__ME_var__000.root"
    with served_folder() as folder:
        shutil.copy(samples / name, folder / name)
        with NginxServer(folder, tls=True) as server:
            url = server.url(name)
            with pytest.raises(ReanimateError, match="CERTIFICATE_VERIFY_FAILED") as info:
                remote.fetch(url, None, tmp_path / "x.root")
            assert str(info.value).startswith(url)
            monkeypatch.setenv("SSL_CERT_FILE", str(server.cert))
            dest = remote.fetch(url, sha256_of(samples / name), tmp_path / "x.root")
            assert dest.read_bytes() == (samples / name).read_bytes()
            from reanimate.datasets.reading import num_entries

            assert num_entries(url) == num_entries(samples / name)


def test_a_digest_for_a_scheme_that_cannot_be_fetched_is_refused():
    from reanimate.datasets.reading import source

    with pytest.raises(ReanimateError, match=r"^s3://bucket/f\.root: a sha256 is given but"):
        source("s3://bucket/f.root", "a" * 64)
    assert source("s3://bucket/f.root") == "s3://bucket/f.root"
    with pytest.raises(ReanimateError, match="not 64 lowercase hex digits"):
        remote.fetch("http://127.0.0.1:1/f.root", "ABC", Path("unused"))
