"""Generic statistical-model tools: HistFactory building, pyhf <-> HS3 conversion, fits.

* `histfactory` builds a pyhf workspace from histograms and a declarative configuration
  (normfactors, norm+shape systematics with symmetrisation, staterror, luminosity).
* `hs3` converts pyhf JSON workspaces to HS3 JSON documents and back, losslessly.
* `fitting` runs maximum-likelihood fits with pyhf + iminuit and serialises the results.
* `jsonio` writes JSON byte-deterministically.

Nothing here knows about the AGC; its configuration lives in `reanimate.analyses.agc`.
"""
