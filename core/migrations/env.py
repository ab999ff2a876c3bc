"""Alembic environment: uses the engine handed over by core.store, or LEARNLOOP_DATABASE_URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from core.model import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        from core.store import make_engine

        engine = make_engine()
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # Several workers may open the store at once: serialise migrations.
            connection.execute(text("SELECT pg_advisory_lock(7262001)"))
            connection.commit()
        try:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
        finally:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_unlock(7262001)"))
                connection.commit()


run_migrations_online()
