"""Test set-up for a real Docker daemon: start dockerd (no iptables, no bridge) if none answers.

overlay2 first: a container of the ~2 GB analysis image starts in about a second, where vfs
copies the whole image for every container (tens of seconds each); vfs where the kernel or the
file system under /var/lib/docker refuses overlay mounts.
"""

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
    for driver in ("overlay2", "vfs"):
        with open(LOG, "ab") as log:
            process = subprocess.Popen(
                ["dockerd", f"--storage-driver={driver}", "--iptables=false", "--bridge=none"],
                stdout=log, stderr=log, start_new_session=True,
            )
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and process.poll() is None:
            if daemon_running():
                return
            time.sleep(0.5)
        if process.poll() is None:
            process.kill()
            process.wait()
    raise RuntimeError(f"dockerd did not answer within {wait:.0f} s; see {LOG}")
