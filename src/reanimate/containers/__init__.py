"""Container images of a spec: the base file system, the wheelhouse, builds, pushes (docker-py).

Platform code: knows the spec's `containers:` block and the lock's `images:` section, nothing of
any analysis. docker-py is imported inside functions, so `reanimate --help` stays light.
"""
