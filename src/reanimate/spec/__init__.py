"""The analysis spec: models, loading with positions, checks and the step graph."""

from reanimate.spec.loader import LoadedSpec, load_spec, validate_text
from reanimate.spec.models import Spec
from reanimate.spec.problems import Problem

__all__ = ["LoadedSpec", "Problem", "Spec", "load_spec", "validate_text"]
