"""reanimate: preserve high-energy-physics analyses, rerun them anywhere, reinterpret them."""

__version__ = "0.1.0"
