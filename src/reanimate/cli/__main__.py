"""`python -m reanimate.cli` is `reanimate`."""

from reanimate.cli import main

main()
