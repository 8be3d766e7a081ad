"""The AGC step programs (`python -m reanimate.analyses.agc.steps.NAME`)."""
