"""Alembic environment. The database URL comes from the register's settings, or from
`config.attributes["connection"]` when a caller (tests, `register db upgrade`) passes one."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from register.config import Settings
from register.storage import models  # noqa: F401  (registers the tables)
from register.storage.db import make_engine
from register.storage.types import UTCDateTime

config = context.config
target_metadata = models.metadata


def _render_item(type_: str, obj: object, autogen_context) -> str | bool:  # noqa: ANN001
    """Render the app's UTCDateTime as the plain column type, so migrations never import app code."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Fail fast rather than queue behind live traffic while holding an exclusive lock.
            context.execute("SET LOCAL lock_timeout = '10s'")
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.attributes.get("url") or Settings().resolved_database_url
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run against a database")
run_migrations_online()
