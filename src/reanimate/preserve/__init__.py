"""A preserved analysis as one file, and its reproduction: `reanimate bundle` and `verify`.

* `collect.py` finds the latest complete run of a spec in a work directory, checks it against
  the cache and the current code, and lists what a bundle holds;
* `wheel.py` builds the analysis code (reanimate itself) as a wheel of the exact source;
* `crate.py` writes the bundle: a Workflow Run RO-Crate zip, byte for byte the same for the
  same run;
* `archive.py` opens a bundle safely (names, links, sizes, zip bombs, digests) and unpacks it;
* `inspect.py` summarises a bundle and checks every digest;
* `compare.py` compares a preserved output with a rerun's in the file's own terms;
* `verify.py` unpacks a bundle, reruns it with the bundle's own code, compares.

Platform code: no analysis is imported (histograms are compared by `reanimate.histcompare`),
no terminal UI (the CLI is `cli/bundle.py`), heavy libraries only inside functions.
See docs/preserve.md.
"""
