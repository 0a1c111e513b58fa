"""Alembic environment for callscribe's store: run through ``Store.upgrade()`` (the connection comes in
``config.attributes["connection"]``, already inside the caller's transaction), or offline (``sql=True``) to print
the SQL for a URL given as ``sqlalchemy.url``."""

from __future__ import annotations

from alembic import context

from callscribe.store.models import Base

config = context.config
connection = config.attributes.get("connection")

if context.is_offline_mode() or connection is None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=Base.metadata)
    with context.begin_transaction():
        context.run_migrations()
