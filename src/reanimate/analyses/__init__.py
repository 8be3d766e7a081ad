"""Analyses preserved with reanimate: everything that knows one analysis's physics.

The platform packages (spec, engines, datasets, statistics, steps) never import from here.
"""
