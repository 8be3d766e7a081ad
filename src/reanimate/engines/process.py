"""Run one step command so that none of its processes can outlive the run.

Each command runs under its guardian (engines/supervise.py) in a process group of its own.
The guardian holds the read end of a pipe whose write end only this process holds: when the
engine ends, by any signal including SIGKILL, the pipe closes and the guardian ends the whole
group. A timeout or an interrupt ends it the same way, through SIGTERM to the guardian.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path


class StepProcess:
    def __init__(self, argv: list[str], cwd: Path, stdout, stderr, env: dict[str, str]) -> None:
        read_end, self._write_end = os.pipe()
        os.set_inheritable(read_end, True)
        guardian = [sys.executable, "-m", "reanimate.engines.supervise", str(read_end), "--",
                    *argv]
        try:
            self.proc = subprocess.Popen(guardian, cwd=cwd, stdout=stdout, stderr=stderr,
                                         env=env, pass_fds=(read_end,))
        except BaseException:
            os.close(self._write_end)
            raise
        finally:
            os.close(read_end)
        self._lock = threading.Lock()

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code, or None when `timeout` passed first (the step was then ended)."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.end()
            self.proc.wait()
            code = None
        self._close()
        return code

    def end(self) -> None:
        """Ask the guardian to end the step's whole process group (it returns at once)."""
        with self._lock:
            if self.proc.poll() is None:
                self.proc.terminate()

    def _close(self) -> None:
        with self._lock:
            if self._write_end is not None:
                os.close(self._write_end)
                self._write_end = None
