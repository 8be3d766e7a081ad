"""Push built images to a registry and record the manifest digest it returned in the lock.

``push_images(loaded, "HOST[:PORT]/NAMESPACE")`` tags each image recorded in the lock (by its
id, so the image pushed is the one built) as ``HOST/NAMESPACE/<last part of its name>:<tag>``,
pushes it, reads the digest the registry answered (``RepoDigests``) and records it as
``"pushed": {REPOSITORY: "sha256:..."}`` and ``"pushed_last": REPOSITORY`` (lock.image_by_digest).
"""

from __future__ import annotations

from reanimate.errors import ReanimateError

DIGEST_PREFIX = "sha256:"


def target_repository(image: str, registry: str) -> tuple[str, str]:
    """(repository, tag) of `image` under `registry`: ``REGISTRY/<last path part>``, its tag."""
    registry = registry.strip().rstrip("/")
    if not registry or "@" in registry or " " in registry:
        raise ReanimateError(f"--registry {registry!r}: give HOST[:PORT]/NAMESPACE")
    last = image.rsplit("/", 1)[-1]
    name, _, tag = last.partition(":")
    return f"{registry}/{name}", tag or "latest"


def push_images(loaded, registry: str, names=None) -> dict[str, dict]:
    """Push each built container image (all of the spec's by default); the lock entries."""
    from reanimate.containers.daemon import docker_client
    from reanimate.lock import read_lock, write_images

    containers = loaded.spec.containers
    unknown = sorted(set(names or ()) - set(containers))
    if unknown:
        raise ReanimateError(f"no container {', '.join(map(repr, unknown))} in {loaded.path}")
    recorded = read_lock(loaded.path).images
    wanted = [n for n in containers if (not names or n in names)]
    if not names:
        wanted = [n for n in wanted if containers[n].build or n in recorded]
    if not wanted:
        raise ReanimateError(f"{loaded.path}: no container to push")
    client = docker_client(timeout=3600, hint="")
    entries = {}
    for name in wanted:
        entry = recorded.get(name)
        if not entry:
            raise ReanimateError(f"container {name!r} has no built image in the lock of "
                                 f"{loaded.path.name}; run `reanimate containers build "
                                 f"{loaded.path}` first")
        entries[name] = _push_one(client, name, dict(entry), registry)
    write_images(loaded.path, entries)
    return entries


def _push_one(client, name: str, entry: dict, registry: str) -> dict:
    from docker.errors import APIError, ImageNotFound

    try:
        image = client.images.get(entry["id"])
    except ImageNotFound:
        raise ReanimateError(
            f"image {entry['id'][:19]} of container {name!r} (recorded in the lock) is not in "
            "this daemon; rebuild it with `reanimate containers build`"
        ) from None
    repository, tag = target_repository(entry["image"], registry)
    try:
        image.tag(repository, tag)
        digest, error = None, None
        for chunk in client.api.push(repository, tag=tag, stream=True, decode=True):
            if "error" in chunk:
                error = chunk.get("errorDetail", {}).get("message") or chunk["error"]
            aux = chunk.get("aux") or {}
            if str(aux.get("Digest", "")).startswith(DIGEST_PREFIX):
                digest = aux["Digest"]
    except APIError as exc:
        raise ReanimateError(f"pushing {repository}:{tag} failed: {exc}") from None
    if error:
        raise ReanimateError(f"pushing {repository}:{tag} failed: {error.strip()[:300]}")
    image.reload()
    listed = [d.partition("@")[2] for d in image.attrs.get("RepoDigests") or []
              if d.partition("@")[0] == repository]
    if digest is None and listed:
        digest = listed[0]
    if not digest or (listed and digest not in listed):
        raise ReanimateError(f"pushing {repository}:{tag}: the registry returned no manifest "
                             f"digest the daemon records ({listed or 'none'})")
    pushed = dict(entry.get("pushed") or {})
    pushed[repository] = digest
    entry["pushed"], entry["pushed_last"] = pushed, repository
    return entry
