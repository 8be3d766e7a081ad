"""Container images of a spec: the base file system, the wheelhouse, builds, pushes (docker-py).

Platform code: knows the spec's `containers:` block and the lock's `images:` section, nothing of
any analysis. docker-py is imported inside functions, so `reanimate --help` stays light.

* `build_images(loaded, names=None, *, record=True, no_cache=False, progress=None)`
* `push_images(loaded, registry, names=None)`
* `write_requirements(loaded, names=None)` — regenerate the hash-pinned requirements.txt

See docs/containers.md.
"""

from reanimate.containers.build import build_images
from reanimate.containers.push import push_images
from reanimate.containers.requirements import write_requirements

__all__ = ["build_images", "push_images", "write_requirements"]
