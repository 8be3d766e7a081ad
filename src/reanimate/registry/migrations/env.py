"""Alembic's environment: the URL comes from the config `db.migrate` builds (no alembic.ini)."""

from alembic import context
from sqlalchemy import pool

from reanimate.registry.db import get_engine
from reanimate.registry.models import Base

config = context.config
url = config.get_main_option("sqlalchemy.url")

if context.is_offline_mode():
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    del pool  # the shared engine's pool is used
    with get_engine(url).connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata,
                          render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
