"""Who sent a bearer token, read outside the request's own transaction.

The caller is known before the request's body is read (the per-institution bounds in
`register.api.gate` need it), so the lookup cannot use the request's session: it looks in the token
cache and, on a miss, reads in a short transaction of its own. No request holds a database connection
while it waits for its client.
"""

from __future__ import annotations

import hmac
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from register.domain.permission import Principal, Role
from register.services.institutions import TokenCache, authenticate_token, hash_token
from register.services.oauth import ACCESS_TOKEN_PREFIX, authenticate_access_token


def cached_bearer(token: str, *, admin_token: str, cache: TokenCache) -> Principal | None:
    """The principal if it is known without the database (the operator's token or a cached one)."""
    if hmac.compare_digest(token.encode(), admin_token.encode()):
        return Principal(role=Role.admin, name="operator")
    return cache.get(hash_token(token))


def authenticate_bearer(
    sessions: sessionmaker[Session], token: str, *, admin_token: str, now: datetime, cache: TokenCache
) -> Principal | None:
    """An institution's `rgt_` token, an OAuth `rat_` access token or the operator's token; None if it is
    none of these."""
    if (known := cached_bearer(token, admin_token=admin_token, cache=cache)) is not None:
        return known
    with sessions() as session:
        principal = None
        if token.startswith(ACCESS_TOKEN_PREFIX):  # from POST /v1/oauth/token; opaque, never a JWT
            principal = authenticate_access_token(session, token, now=now, cache=cache)
        if principal is None:  # an operator may have chosen an admin token that starts with rat_
            principal = authenticate_token(session, token, admin_token=admin_token, cache=cache)
        return principal
