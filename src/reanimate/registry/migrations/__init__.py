"""Alembic migrations of the registry database (`reanimate registry migrate`)."""
