"""Real registry servers for the tests: `reanimate registry serve` as a process on 127.0.0.1, a
throw-away PostgreSQL cluster (Debian's postgresql binaries, run as the `postgres` user when the
tests run as root), tokens made by the CLI, and minimal valid RO-Crate bundles for API tests.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(*args, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reanimate.cli", *map(str, args)],
                          capture_output=True, text=True, check=False, timeout=timeout,
                          env={**os.environ, **(env or {})})


@dataclass
class Server:
    """A `reanimate registry serve` process; `stop()` / `kill()` / `start()` again on the
    same port, store and database."""

    store: Path
    database: str = ""
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def args(self) -> list[str]:
        out = ["registry", "serve", "--host", "127.0.0.1", "--port", str(self.port),
               "--store", str(self.store)]
        return out + (["--database", self.database] if self.database else [])

    def start(self) -> Server:
        self.store.mkdir(parents=True, exist_ok=True)
        self.log = self.store.parent / f"server-{self.port}.log"
        handle = open(self.log, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "reanimate.cli", *self.args()],
                                        stdout=handle, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        handle.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/api/v1/health", timeout=2) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"the server did not answer in {START_TIMEOUT_S} s: "
                           f"{self.log.read_text()[-3000:]}")

    def _signal(self, sig: int) -> None:
        if self.process and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def token(self, *scopes: str, owner: str = "alice") -> str:
        """A new token made by `reanimate registry token create` (direct database access)."""
        args = ["registry", "token", "create", "--owner", owner, "--store", str(self.store)]
        for scope in scopes:
            args += ["--scope", scope]
        if self.database:
            args += ["--database", self.database]
        done = cli(*args)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]


# -- PostgreSQL ---------------------------------------------------------------------------------


def postgres_binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@dataclass
class Postgres:
    """A throw-away cluster in `folder`, trust authentication, listening on 127.0.0.1 only."""

    folder: Path
    port: int = field(default_factory=free_port)
    user: str = "reanimate"

    def _run(self, *args: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*prefix, *args], capture_output=True, text=True, check=False,
                              timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)}: {done.stderr or done.stdout}")

    def start(self) -> Postgres:
        binaries = postgres_binaries()
        assert binaries, "Debian's postgresql is not installed (make test installs it)"
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
            os.chmod(self.folder, 0o700)
            parent = self.folder.parent
            while parent != parent.parent:  # postgres must be able to reach its folder
                os.chmod(parent, os.stat(parent).st_mode | 0o011)
                parent = parent.parent
        data = self.folder / "data"
        self._run(str(binaries / "initdb"), "-D", str(data), "-U", self.user, "--auth=trust",
                  "-E", "UTF8", "--no-instructions")
        self._run(str(binaries / "pg_ctl"), "-D", str(data), "-l", str(self.folder / "log"),
                  "-w", "-o", f"-p {self.port} -c listen_addresses=127.0.0.1 "
                              f"-k {self.folder} -c max_connections=300 -c fsync=off", "start")
        self._run(str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
                  self.user, "registry")
        return self

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/registry"

    def stop(self) -> None:
        binaries = postgres_binaries()
        try:
            self._run(str(binaries / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "fast",
                      "-w", "stop")
        except RuntimeError:
            pass


# -- bundles ------------------------------------------------------------------------------------


def minimal_bundle(path: Path, name: str = "toy", version: str = "1.0.0",
                   payload: bytes = b'{"answer": 42}\n', title: str | None = None) -> Path:
    """The smallest bundle the registry accepts: a valid RO-Crate whose one member's sha256 and
    size are in the metadata. Different `payload` -> different bundle digest."""
    member = "outputs/result/answer.json"
    graph = [
        {"@id": "ro-crate-metadata.json", "@type": "CreativeWork",
         "conformsTo": {"@id": "https://w3id.org/ro/crate/1.1"}, "about": {"@id": "./"}},
        {"@id": "./", "@type": "Dataset", "name": title or f"The {name} analysis",
         "alternateName": name, "version": version, "datePublished": "2026-12-01",
         "author": [{"@id": "#alice"}], "hasPart": [{"@id": member}],
         "license": "Apache-2.0"},
        {"@id": "#alice", "@type": "Person", "name": "Alice Physicist"},
        {"@id": member, "@type": "File", "sha256": hashlib.sha256(payload).hexdigest(),
         "contentSize": str(len(payload)), "encodingFormat": "application/json"},
    ]
    metadata = json.dumps({"@context": "https://w3id.org/ro/crate/1.1/context",
                           "@graph": graph}, indent=1, sort_keys=True).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for arcname, data in (("ro-crate-metadata.json", metadata), (member, payload)):
            info = zipfile.ZipInfo(arcname, (2026, 12, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
