"""The driver's errors that mean "the database is unavailable" (answered 503 `database_unavailable`, never a
client's fault): psycopg's OperationalError (SQLSTATE classes 08 connection, 53 insufficient resources, 57
operator intervention and a cancelled statement...), its InterfaceError (a connection closed under it) and
ReadOnlySqlTransaction (a primary being demoted, a standby). One list for the API's answer to psycopg's errors
(`api.problems.database_unavailable`) and for the lender lane's to asyncpg's, classified by their SQLSTATE
(`storage.dialects.postgres_exposure`): kept in two places, the two drifted apart once (a 500 in CI's
failover test)."""

from __future__ import annotations

import psycopg

DRIVER_UNAVAILABLE: tuple[type[psycopg.Error], ...] = (
    psycopg.OperationalError, psycopg.InterfaceError, psycopg.errors.ReadOnlySqlTransaction,
)


def sqlstate_unavailable(sqlstate: str) -> bool:
    """Whether an error with this SQLSTATE is one of DRIVER_UNAVAILABLE (as psycopg would raise it)."""
    return issubclass(psycopg.errors.lookup(sqlstate), DRIVER_UNAVAILABLE)
