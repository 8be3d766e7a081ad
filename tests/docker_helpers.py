"""Test set-up for a real Docker daemon: start dockerd (vfs, no iptables, no bridge) if none."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

LOG = Path("/tmp/reanimate-test-dockerd.log")


def daemon_running() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


def ensure_dockerd(wait: float = 60.0) -> None:
    """Start dockerd in the background unless one answers; it stays up for later tests."""
    if daemon_running():
        return
    if not shutil.which("dockerd"):
        raise RuntimeError("dockerd is not installed (make test installs docker.io)")
    with open(LOG, "ab") as log:
        subprocess.Popen(
            ["dockerd", "--storage-driver=vfs", "--iptables=false", "--bridge=none"],
            stdout=log, stderr=log, start_new_session=True,
        )
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if daemon_running():
            return
        time.sleep(0.5)
    raise RuntimeError(f"dockerd did not answer within {wait:.0f} s; see {LOG}")
