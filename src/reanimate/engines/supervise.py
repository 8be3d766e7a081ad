"""The guardian of one step's processes: `python -m reanimate.engines.supervise FD -- ARGV...`.

The local engine starts each step through this small process. It starts ARGV in a process
group of its own, then waits for whichever comes first:

* the step ends: every process still left in its group (daemons, forgotten children) is
  killed, and the guardian exits with the step's exit code;
* FD, the read end of a pipe whose write end only the engine holds, reaches end-of-file: the
  engine is gone, however it died (SIGKILL included), so the whole group is ended;
* SIGTERM (the engine's timeout, or its own SIGTERM/SIGINT): the whole group is ended.

Ending a group is SIGTERM, a grace period, then SIGKILL. The guardian ignores SIGINT, which the
terminal sends to the engine's group, so that the engine decides what an interrupt means.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time

GRACE_SECONDS = 3.0
EXIT_ENDED = 143  # what a shell reports for a process ended by SIGTERM


def end_group(pgid: int, grace: float = GRACE_SECONDS) -> None:
    """SIGTERM to every process of the group, then SIGKILL to what is left after `grace`."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 0.0)):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except (ProcessLookupError, PermissionError):
                return
            time.sleep(0.05)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m reanimate.engines.supervise FD -- ARGV...", file=sys.stderr)
        return 2
    watch_fd, command = int(argv[0]), argv[2:]
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    ended = {"by": None}

    def on_term(signum, _frame):
        ended["by"] = signum

    signal.signal(signal.SIGTERM, on_term)
    try:
        child = subprocess.Popen(command, start_new_session=True, pass_fds=(),
                                 close_fds=True)
    except OSError as exc:
        print(f"error: cannot start {command[0]!r}: {exc}", file=sys.stderr)
        return 127
    while True:
        if ended["by"] is not None:
            end_group(child.pid)
            child.wait()
            return EXIT_ENDED
        try:
            ready, _, _ = select.select([watch_fd], [], [], 0.2)
        except InterruptedError:
            continue
        if ready and not os.read(watch_fd, 1):  # end-of-file: the engine is gone
            end_group(child.pid)
            child.wait()
            return EXIT_ENDED
        code = child.poll()
        if code is not None:
            end_group(child.pid, grace=0.5)  # whatever the step left behind
            return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
