"""A step sees exactly the input bytes its cache key was made from.

External inputs are hashed once when a run starts; their stat fingerprints (size, mtime, inode,
ctime: see hashing.py for why that is sound) are kept. Before a step starts and after it ends,
every input it reads is checked again: an external file whose fingerprint moved is hashed again
and must still have the digest of the key; an upstream output must still be a valid cache
entry. Otherwise the step fails and nothing is cached for it.
"""

from __future__ import annotations

from reanimate.engines.cache import StepCache
from reanimate.engines.plan import Plan
from reanimate.errors import ReanimateError
from reanimate.hashing import HashMemo, stat_fingerprint


class InputGuard:
    def __init__(self, plan: Plan, memo: HashMemo, cache: StepCache) -> None:
        self.plan, self.memo, self.cache = plan, memo, cache
        self.digests: dict[str, str | None] = {}
        self.stats: dict[str, list[int]] = {}

    def verify(self, steps: set[str]) -> dict[str, str | None]:
        """Hash (and check against the lock) every external input of `steps`, once."""
        files = self.plan.external_inputs(steps)
        before = {k: stat_fingerprint(f.path) for k, f in files.items()
                  if f.path is not None and f.path.is_file()}
        self.digests = self.plan.verify_inputs(steps, self.memo)
        for key, stat in before.items():
            if stat_fingerprint(files[key].path) != stat:
                raise ReanimateError(f"input {key} changed while it was being hashed; "
                                     "run again when it is stable")
        self.stats = before
        return self.digests

    def changed(self, step: str, produced_keys: dict[str, str]) -> str | None:
        """The first input of `step` that is no longer what was hashed, or None."""
        planned = self.plan.steps[step]
        for item in planned.external_files():
            if item.path is None or item.key not in self.stats:
                continue
            try:
                now = stat_fingerprint(item.path)
            except OSError:
                return item.key
            if now != self.stats[item.key]:
                if self.memo.sha256(item.path) != self.digests.get(item.key):
                    return item.key
                self.stats[item.key] = now
        for items in planned.inputs.values():
            for item in items:
                producer = item.producer
                if producer is None or producer.step not in produced_keys:
                    continue
                outputs = self.plan.steps[producer.step].outputs
                if self.cache.lookup(producer.step, produced_keys[producer.step],
                                     outputs) is None:
                    return str(producer)
        return None
