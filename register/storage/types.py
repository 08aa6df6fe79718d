"""Column types that behave the same on SQLite and PostgreSQL, and the names every table's constraints and
indexes take (set on the shared metadata here, so that every module of tables gets them, whichever is
imported first)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import JSON, Column, DateTime, Text
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in Python; `timestamptz` on PostgreSQL, naive UTC text on SQLite (whose DATETIME
    writes the fields of the UTC time and drops the zone, so one conversion serves both)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):  # noqa: ANN001
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect):  # noqa: ANN001
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class TextJson(TypeDecorator[Any]):
    """PostgreSQL's side of `WrittenJson`: text holding the JSON the register wrote (sorted keys), dicts in
    Python. A value given encoded (bytes: the batch path) is stored as it is."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect):  # noqa: ANN001
        return Text()  # itself: psycopg's descriptor for Text is a VARCHAR, which is not what the column is

    def process_bind_param(self, value: Any, dialect):  # noqa: ANN001
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()

    def process_result_value(self, value: Any, dialect):  # noqa: ANN001
        return None if value is None else orjson.loads(value)


# JSON the register writes itself and never has the database look into on a hot path: dicts in and out in
# Python, JSON on SQLite, but plain `text` on PostgreSQL, whose `json` parses every value written only to check
# it (1.2 us of its CPU for a version's state, one a line of a daily file: BENCHMARKS.md, ingest, eleventh
# round). A query that reads into it asks storage.dialect's `readable_json` for the expression.
WrittenJson = JSON().with_variant(TextJson(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


def utc_field(nullable: bool = False, index: bool = False) -> Any:
    """A UTC time column."""
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable, index=index))
