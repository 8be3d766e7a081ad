"""Engines orchestrate the same step commands: local (embedded), cwl (cwltool), reana."""
