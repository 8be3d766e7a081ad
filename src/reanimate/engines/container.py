"""Steps inside their container images: `reanimate run --containers docker`, through docker-py.

Two halves:

* `ContainerSteps`, in the engine: resolves each step's image from the lock by id (an image the
  lock does not record, or the daemon does not have, is one error line naming `reanimate
  containers build`), and turns a step's command line into a container request: its inputs
  mounted read-only at their own absolute paths, its scratch folder writable (and the working
  directory), no network, the invoking uid:gid, a read-only root file system with a tmpfs
  /tmp, the engine's step environment (never the host's PATH or virtual environment);
* `python -m reanimate.engines.container REQUEST`, run by the engine under the step's guardian
  (engines/process.py, supervise.py): creates the container, copies its stdout and stderr to
  its own (the step's log files), waits (ending it at the step's timeout, counted from its
  start), hands its removal to the daemon and exits with its exit code. SIGTERM (Ctrl-C or
  SIGTERM of the run, or the engine gone, SIGKILL included) removes the container at once
  (docker kills it first). At its end the run waits until every container of its steps is
  gone (`ContainerSteps.close`), and a run removes containers left by runs that died.

The code a step runs is the image's (its reanimate and dependencies); nothing of the host's
Python or repository is mounted.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
import uuid
from pathlib import Path

from reanimate.errors import ReanimateError
from reanimate.lock import image_by_digest

CONTAINER_MODES = ("none", "docker")
#: Host variables a container step gets when set (they change output bytes, see datasets/writing).
PASSED_ENV = ("SOURCE_DATE_EPOCH",)
LABEL = "io.reanimate"  # labels: io.reanimate.step, .engine-pid, .host
TMPFS = {"/tmp": "rw,exec,nosuid,nodev,mode=1777"}
EXIT_ENDED = 143
EXIT_CANNOT_START = 127  # the engine shows the runner's stderr line as the step's message
#: The runner hands a container's removal to the daemon (which goes on if the runner is gone):
#: it waits this long for the answer, not for the copy-on-write-less (vfs) deletion itself.
REMOVAL_HANDOFF_S = 2
TIMED_OUT_LINE = "error: reanimate ended the step at its timeout"
EXIT_TIMED_OUT = 124
REMOVAL_WAIT_S = 300.0  # how long a run waits, at its end, for its containers to be gone


def check_mode(mode: str) -> str:
    if mode not in CONTAINER_MODES:
        raise ReanimateError(f"--containers {mode!r}: expected one of "
                             f"{', '.join(CONTAINER_MODES)}")
    return mode


class ContainerSteps:
    """The images of a run's steps, checked once, and the container request of each step."""

    def __init__(self, plan, steps: set[str] | list[str]) -> None:
        from reanimate.containers.daemon import docker_client

        self.plan = plan
        self.client = docker_client()
        self._lock = threading.Lock()
        self._released: list[str] = []  # containers of finished steps, for close()
        self.images: dict[str, dict] = {}  # step -> {"name": TAG, "id": "sha256:..."}
        checked: dict[str, dict] = {}
        build = f"reanimate containers build {plan.loaded.path}"
        for name in plan.order:
            if name not in steps or plan.steps[name].pin is not None:
                continue
            container = plan.steps[name].step.container
            if not container:
                raise ReanimateError(
                    f"step {name!r} has no container: --containers docker runs every step inside "
                    "its image; declare `container:` for it, or run without --containers")
            if container not in checked:
                checked[container] = self._check(container, name, build)
            self.images[name] = checked[container]
        version = self.client.version()
        self.server = {"runtime": "docker", "server": version.get("Version"),
                       "api": version.get("ApiVersion")}
        self.sweep()

    def _check(self, container: str, step: str, build: str) -> dict:
        from docker.errors import ImageNotFound

        entry = self.plan.image_entry(container)
        tag = self.plan.spec.containers[container].image
        if entry is None:
            raise ReanimateError(
                f"--containers docker: the lock ({self.plan.lock.path.name}) records no image "
                f"for container {container!r} (step {step!r}); build it: {build}")
        try:
            self.client.images.get(entry["id"])
        except ImageNotFound:
            by_digest = image_by_digest(entry)
            pulled = f" (or pull {by_digest})" if by_digest else ""
            raise ReanimateError(
                f"--containers docker: image {entry['id']} of container {container!r} ({tag}), "
                f"recorded in the lock, is not in the Docker daemon; build it again{pulled}: "
                f"{build}") from None
        return {"name": entry.get("image") or tag, "id": entry["id"]}

    def image(self, step: str) -> dict | None:
        return self.images.get(step)

    def image_id(self, step: str) -> str | None:
        image = self.images.get(step)
        return image["id"] if image else None

    def request(self, step: str, argv: list[str], inputs: dict[str, list[str]],
                scratch: Path, timeout: float | None = None) -> dict:
        """What the runner creates: image, command, mounts, user, environment, labels, and
        the step's timeout (counted from the container's start, see timed_out)."""
        mounts: dict[str, bool] = {}
        for paths in inputs.values():
            for path in paths:
                if os.path.isabs(path) and os.path.exists(path):
                    mounts.setdefault(os.path.normpath(path), True)
        mounts[str(scratch)] = False  # writable
        env = {"PYTHONHASHSEED": "0", "REANIMATE_STEP": step, "HOME": "/tmp",
               "REANIMATE_STEP_FACTS": str(scratch / ".reanimate-step-facts.json")}
        env.update({k: os.environ[k] for k in PASSED_ENV if k in os.environ})
        return {
            "name": f"reanimate-{step}-{uuid.uuid4().hex[:12]}",
            "image": self.images[step]["id"],
            "command": argv,
            "workdir": str(scratch),
            "user": f"{os.getuid()}:{os.getgid()}",
            "env": env,
            "mounts": [[path, read_only] for path, read_only in sorted(mounts.items())],
            "labels": {f"{LABEL}.step": step, f"{LABEL}.engine-pid": str(os.getpid()),
                       f"{LABEL}.host": socket.gethostname()},
            "timeout": timeout,
        }

    @staticmethod
    def timed_out(code: int | None, stderr: Path) -> bool:
        """Whether the runner ended the step at its timeout. The runner, not the engine, times
        a container step, from the container's start: creating one (a full copy of the image
        with the vfs storage driver) must not count against the step."""
        if code != EXIT_TIMED_OUT:
            return False
        with open(stderr, "rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - 4096))
            return log.read().decode(errors="replace").rstrip().endswith(TIMED_OUT_LINE)

    @staticmethod
    def runner_argv(request: dict) -> list[str]:
        """The host command the guardian runs: this module with the request."""
        return [sys.executable, "-m", "reanimate.engines.container", json.dumps(request)]

    def release(self, request: dict) -> None:
        """A step is over: its container is being removed (the runner asked the daemon) or
        will be by close(); the next step need not wait for that."""
        with self._lock:
            self._released.append(request["name"])

    def close(self, wait: float = REMOVAL_WAIT_S) -> None:
        """Wait until the container of every step of the run is gone (removing what is left),
        so that none outlives the run."""
        with self._lock:
            names, self._released = self._released, []
        try:  # and any other of this run's (one whose runner was ended while creating it)
            names += [info["Id"] for info in self.client.api.containers(all=True, filters={
                "label": [f"{LABEL}.engine-pid={os.getpid()}",
                          f"{LABEL}.host={socket.gethostname()}"]})]
        except Exception:  # noqa: BLE001 - the daemon gone: the names known are tried below
            pass
        left = [name for name in dict.fromkeys(names) if not self._remove(name, wait)]
        if left:
            raise ReanimateError(f"could not remove the container(s) {', '.join(left)}; "
                                 f"remove them: docker rm -f {' '.join(left)}")

    def _remove(self, name: str, wait: float) -> bool:
        from docker.errors import APIError, DockerException, NotFound

        deadline = time.monotonic() + wait
        while True:
            try:
                self.client.api.remove_container(name, force=True)
                return True
            except NotFound:
                return True
            except APIError as exc:
                # 409: its removal is in progress (the runner's request); wait for it
                if exc.status_code != 409 or time.monotonic() > deadline:
                    return False
            except DockerException:
                return False
            time.sleep(0.2)

    def sweep(self) -> None:
        """Remove containers left by runs of this host that have died (a runner killed hard)."""
        from docker.errors import APIError, NotFound

        host = socket.gethostname()
        for info in self.client.api.containers(
                all=True, filters={"label": [f"{LABEL}.host={host}"]}):
            pid = info.get("Labels", {}).get(f"{LABEL}.engine-pid", "")
            if pid.isdigit() and not _alive(int(pid)):
                try:
                    self.client.api.remove_container(info["Id"], force=True)
                except (NotFound, APIError):
                    pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- the runner: python -m reanimate.engines.container REQUEST ------------------------------
class _Ended(Exception):
    pass


class _TimedOut(Exception):
    pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def run_request(request: dict) -> int:
    """Create, run and remove one container; return its exit code (see the module doc)."""
    from docker.errors import DockerException
    from docker.types import Mount

    from reanimate.containers.daemon import docker_client

    def on_signal(signum, _frame):
        raise _Ended(signum)

    def on_alarm(_signum, _frame):
        raise _TimedOut

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the engine decides what Ctrl-C means
    container = None
    step = request["env"]["REANIMATE_STEP"]
    try:
        try:
            client = docker_client()
            container = client.containers.create(
                request["image"], request["command"], name=request["name"],
                working_dir=request["workdir"], user=request["user"],
                environment=request["env"], labels=request["labels"],
                mounts=[Mount(path, path, type="bind", read_only=read_only)
                        for path, read_only in request["mounts"]],
                network_mode="none", read_only=True, tmpfs=TMPFS, init=True,
                cap_drop=["ALL"], security_opt=["no-new-privileges"],
            )
            stream = container.attach(stdout=True, stderr=True, stream=True, logs=True,
                                      demux=True)
            container.start()
            if request.get("timeout"):
                signal.setitimer(signal.ITIMER_REAL, float(request["timeout"]))
        except (ReanimateError, DockerException) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            print(f"error: cannot start the container of step {step!r}: {reason}",
                  file=sys.stderr)
            return EXIT_CANNOT_START
        try:
            for out, err in stream:
                if out:
                    _write_all(1, out)
                if err:
                    _write_all(2, err)
            return int(container.wait()["StatusCode"])
        except DockerException as exc:
            print(f"error: lost the container of step {step!r}: {exc}", file=sys.stderr)
            return 125
    except _Ended:
        return EXIT_ENDED
    except _TimedOut:
        print(TIMED_OUT_LINE, file=sys.stderr)
        return EXIT_TIMED_OUT
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not stop removal
        if container is not None:
            _hand_off_removal(client, request["name"])


def _hand_off_removal(client, name: str) -> None:
    """`docker rm -f NAME` (a running container is killed first), not waiting for the deletion
    of its file system: the daemon completes it even when nobody waits for the answer."""
    import requests
    from docker.errors import DockerException

    client.api.timeout = REMOVAL_HANDOFF_S
    try:
        client.api.remove_container(name, force=True)
    except (DockerException, requests.RequestException):
        pass  # the engine's close() checks, and removes what is left


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m reanimate.engines.container REQUEST_JSON", file=sys.stderr)
        return 2
    return run_request(json.loads(argv[0]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
