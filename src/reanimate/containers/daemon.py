"""The Docker daemon through docker-py: one client, and one line when there is none."""

from __future__ import annotations

from reanimate.errors import ReanimateError


class DockerUnavailable(ReanimateError):
    """No Docker daemon to talk to (not installed, not running, no permission)."""


def docker_client(timeout: int = 600, hint: str = "or run without --containers"):
    """A connected `docker.DockerClient` (from DOCKER_HOST or the default socket).

    `hint` ends the one-line error when there is none (what else the user can do).
    """
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:
        raise DockerUnavailable("docker-py (the `docker` Python package) is not installed") \
            from None
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except DockerException as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DockerUnavailable(
            f"docker is not available ({reason[:160]}); start the Docker daemon (dockerd)"
            + (f" {hint}" if hint else "")
        ) from None
    return client
