"""Real file servers on 127.0.0.1 for the remote-input tests: XRootD, nginx, and a silent socket.

Each server is a context manager that starts the real daemon on a free port, waits (bounded) until
it answers, yields, and stops it (its own process, by pid). Nothing here mocks a protocol:

* :class:`XRootDServer` runs Debian's ``/usr/bin/xrootd`` exporting one folder; URLs are
  ``root://127.0.0.1:PORT//abs/path``. xrootd refuses to run as root, so under root it is started
  with ``-R nobody`` and the folder it serves must be readable by everyone (:func:`served_folder`).
  It listens on every interface (xrootd cannot bind one address) but ``xrd.allow host 127.0.0.1``
  makes it refuse connections from anywhere else.
* :class:`NginxServer` runs ``/usr/sbin/nginx`` (single process, no daemon) on 127.0.0.1, serving
  one folder with range requests; its access log counts the requests per path. With ``tls=True``
  it serves https with a self-signed certificate made by ``openssl`` (its path in ``.cert``).
* :class:`SilentServer` listens and never answers: connections are accepted by the kernel's
  backlog and no byte ever comes back (what a hung facility server looks like to a client).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path

XROOTD = "/usr/bin/xrootd"
NGINX = "/usr/sbin/nginx"
OPENSSL = "/usr/bin/openssl"
START_TIMEOUT_S = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, log: Path | None) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            text = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"server exited with {process.returncode}: {text}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"server did not listen on 127.0.0.1:{port} in {START_TIMEOUT_S} s")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _world_readable(path: Path) -> None:
    for folder, _dirs, files in os.walk(path):
        os.chmod(folder, 0o755)
        for name in files:
            file = Path(folder) / name
            file.chmod(file.stat().st_mode | stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)


@contextlib.contextmanager
def served_folder(prefix: str = "reanimate-served-"):
    """A fresh folder under the system temp dir that a server running as ``nobody`` can read
    (pytest's tmp_path lies under a 0700 folder); removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class XRootDServer:
    """``xrootd`` exporting ``folder`` on 127.0.0.1:``port`` (a free one by default)."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.folder = Path(folder).resolve()
        self.port = port or free_port()
        self.run_dir = Path(tempfile.mkdtemp(prefix="reanimate-xrootd-"))
        self.log = self.run_dir / "xrootd.log"
        self.process: subprocess.Popen | None = None

    def url(self, path: str | Path) -> str:
        """The root:// URL of ``path`` (absolute, or relative to the exported folder)."""
        path = Path(path)
        absolute = path if path.is_absolute() else self.folder / path
        return f"root://127.0.0.1:{self.port}/{absolute}"

    def __enter__(self) -> XRootDServer:
        config = self.run_dir / "xrootd.cfg"
        config.write_text(
            f"all.export {self.folder}\n"
            f"all.adminpath {self.run_dir}\n"
            f"all.pidpath {self.run_dir}\n"
            "xrd.network nodnr\n"          # no reverse DNS of clients (none here)
            "xrd.allow host 127.0.0.1\n"   # refuse every client that is not local
        )
        command = [XROOTD, "-c", str(config), "-p", str(self.port), "-l", str(self.log), "-I", "v4"]
        if os.geteuid() == 0:  # "Security reasons prohibit running as superuser"
            shutil.chown(self.run_dir, user="nobody")
            _world_readable(self.folder)
            command += ["-R", "nobody"]
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            _wait_for_port(self.port, self.process, self.log)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            _stop(self.process)
        shutil.rmtree(self.run_dir, ignore_errors=True)


class NginxServer:
    """nginx serving ``folder`` on 127.0.0.1:``port`` (http, or https with ``tls=True``)."""

    def __init__(self, folder: Path, port: int | None = None, tls: bool = False) -> None:
        self.folder = Path(folder).resolve()
        self.port = port or free_port()
        self.tls = tls
        self.prefix = Path(tempfile.mkdtemp(prefix="reanimate-nginx-"))
        self.access_log = self.prefix / "access.log"
        self.error_log = self.prefix / "error.log"
        self.cert = self.prefix / "cert.pem"
        self.process: subprocess.Popen | None = None

    def url(self, path: str | Path) -> str:
        rel = Path(path).resolve().relative_to(self.folder) if Path(path).is_absolute() else path
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}/{Path(rel).as_posix()}"

    def requests(self, path: str | Path | None = None) -> list[tuple[str, str, int, str]]:
        """(method, uri, status, range header) of every request served so far (for ``path``)."""
        if not self.access_log.exists():
            return []
        out = []
        for line in self.access_log.read_text().splitlines():
            method, uri, status, rng = (line.split("\t") + ["", "", "0", ""])[:4]
            out.append((method, uri, int(status), "" if rng == "-" else rng))
        if path is None:
            return out
        uri = "/" + (Path(path).resolve().relative_to(self.folder).as_posix()
                     if Path(path).is_absolute() else Path(path).as_posix())
        return [r for r in out if r[1] == uri]

    def __enter__(self) -> NginxServer:
        p = self.prefix
        listen = f"127.0.0.1:{self.port}"
        tls = ""
        if self.tls:
            key = p / "key.pem"
            subprocess.run(
                [OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                 "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                 "-keyout", str(key), "-out", str(self.cert)],
                check=True, capture_output=True, timeout=60,
            )
            listen += " ssl"
            tls = f"ssl_certificate {self.cert}; ssl_certificate_key {key};"
        (p / "nginx.conf").write_text(f"""
daemon off;
master_process off;
worker_processes 1;
pid {p}/nginx.pid;
error_log {self.error_log} warn;
events {{ worker_connections 256; }}
http {{
  default_type application/octet-stream;
  log_format counts "$request_method\\t$uri\\t$status\\t$http_range";
  access_log {self.access_log} counts;
  client_body_temp_path {p}/body; proxy_temp_path {p}/proxy; fastcgi_temp_path {p}/fastcgi;
  uwsgi_temp_path {p}/uwsgi; scgi_temp_path {p}/scgi;
  server {{ listen {listen}; {tls} root {self.folder}; }}
}}
""")
        self.process = subprocess.Popen(
            [NGINX, "-p", str(p), "-c", str(p / "nginx.conf"), "-e", str(self.error_log)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _wait_for_port(self.port, self.process, self.error_log)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            _stop(self.process)
        shutil.rmtree(self.prefix, ignore_errors=True)


class SilentServer:
    """A socket on 127.0.0.1 that listens and never accepts or answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def __enter__(self) -> SilentServer:
        self.sock.listen(64)
        return self

    def __exit__(self, *exc) -> None:
        self.sock.close()
