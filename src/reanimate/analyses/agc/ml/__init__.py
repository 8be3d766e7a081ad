"""Machine learning of the AGC analysis: the BDT jet–parton assignment (docs/agc-analysis.md §9).

``permutations`` (which jet plays which parton), ``features`` (the 20 BDT inputs), ``truth``
(GenPart matching for training labels), ``training`` (XGBoost on even / odd events),
``tracking`` (MLflow), ``pinning`` (sha256-verified model files, registry pins),
``inference`` (best permutation per event, parity swap) and ``histograms`` (the 20 feature
histograms of ``histograms_ml.root``).
"""
