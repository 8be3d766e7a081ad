"""Step programs (python -m reanimate.steps.NAME)."""
