"""Evaluate an HS3 document's NLL with pyhs3 0.4.2 (an independent implementation).

Run as a program (so PYTENSOR_FLAGS is set before pytensor is imported):

    PYTENSOR_FLAGS=cast_policy=numpy+floatX python tests/pyhs3_eval.py DOC.hs3.json POINTS.json

POINTS.json: a list of {hs3 parameter name: value}; prints a JSON list of NLL values.
Works around two pyhs3 0.4.2 bugs (see ../shared/hs3.md), here in the test and not in the
product: staterror in the default Barlow-Beeston-lite mode makes model building raise
ValueError (the per-modifier constraint is built although lite mode builds a channel-level
one instead), and float32-representable constants compute in float32 unless
cast_policy=numpy+floatX.
"""

from __future__ import annotations

import json
import sys


def _patch_staterror() -> None:
    from pyhs3.distributions.histfactory import HistFactoryDistChannel
    from pyhs3.distributions.histfactory.modifiers import StatErrorModifier

    original = HistFactoryDistChannel.constraint_specs

    class _LiteConstraint:
        def __init__(self, dist) -> None:
            self.dist = dist

        def make_constraint(self, context, _sample_data):
            import pytensor.tensor as pt

            out = self.dist._make_barlow_beeston_lite_constraint(context)
            return pt.constant(1.0) if out is None else out

    def constraint_specs(self):
        lite = self.barlow_beeston_method == "lite"
        found = False
        for key, modifier, sample_data in original(self):
            if lite and isinstance(modifier, StatErrorModifier):
                found = True
                continue
            yield key, modifier, sample_data
        if found:
            yield None, _LiteConstraint(self), None

    HistFactoryDistChannel.constraint_specs = constraint_specs


def nll_function(doc: dict):
    """A callable {name: value} -> NLL, and the names of its free parameters."""
    import numpy as np
    import pyhs3
    import pytensor
    from pytensor.graph.traversal import explicit_graph_inputs

    _patch_staterror()
    ws = pyhs3.Workspace(**doc)
    model = ws.model(ws.analyses[0], progress=False, mode="FAST_COMPILE")
    expr = -model.log_prob
    inputs = list(explicit_graph_inputs([expr]))
    fn = pytensor.function(inputs, expr, mode="FAST_COMPILE")

    def nll(values: dict) -> float:
        args = [np.asarray(values[v.name], dtype=np.float64).reshape(v.type.shape
                                                                      and (1,) or ())
                for v in inputs]
        return float(np.asarray(fn(*args)).ravel()[0])

    return nll, [v.name for v in inputs]


def main() -> None:
    doc = json.load(open(sys.argv[1]))
    points = json.load(open(sys.argv[2]))
    nll, names = nll_function(doc)
    print(json.dumps({"names": names, "nll": [nll(p) for p in points]}))


if __name__ == "__main__":
    main()
