"""Institutions and their bearer tokens. A token is 32 random bytes shown once; only its SHA-256 is kept."""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import threading
import time
import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from register.domain.permission import Principal, Role
from register.errors import LimitsUnavailable
from register.shared import Counters
from register.storage import institutions as store
from register.storage.models import Institution

log = logging.getLogger(__name__)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


TOKEN_PREFIX = "rgt_"  # recognisable by secret scanners, and never starts with "-" on a command line


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)  # 32 random bytes


def create_institution(
    session: Session,
    *,
    name: str,
    role: Role,
    org_number: str | None,
    country: str | None,
    now: datetime,
    token: str | None = None,
    contact: dict[str, str | None] | None = None,
) -> tuple[Institution, str]:
    """Register an institution; returns it with its bearer token, which is not kept and not shown again."""
    token = token or new_token()
    inst = Institution(
        id=str(uuid.uuid4()),
        name=name,
        role=role.value,
        org_number=org_number,
        country=country,
        token_hash=hash_token(token),
        created_at=now,
        contact_phone=(contact or {}).get("phone"),
        contact_email=(contact or {}).get("email"),
        contact_url=(contact or {}).get("url"),
    )
    session.add(inst)
    session.flush()
    return inst, token


def list_institutions(session: Session) -> list[Institution]:
    """Every institution, oldest first."""
    return store.list_institutions(session)


def institution_name(session: Session, institution_id: str) -> str | None:
    return store.names_by_id(session, {institution_id}).get(institution_id)


def rotate_institution_token(session: Session, institution: Institution) -> str:
    """Replace an institution's bearer token with a new one, returned once; the old one stops working
    (in other server processes after at most the token cache's ttl)."""
    token = new_token()
    institution.token_hash = hash_token(token)
    session.flush()
    return token


class TokenCache:
    """Recently verified institution tokens, by hash, for `ttl` seconds: saves a query on every request.

    This process forgets an institution's tokens at once when they are revoked here (`revoked`). Other
    processes learn of it through a generation counter in the store they share (`register.shared`): a
    revocation advances it once its transaction has committed (`advance`), and each process reads it every
    `check_every` seconds (`start` runs the reader); an entry cached under an older generation is not used.
    An entry is used only while the generation was read less than `2 * check_every` seconds ago, so a
    revoked token stops working in every process within `2 * check_every` seconds of its revocation's
    answer (2 s by default), even if the store stops answering (then every lookup reads the database).
    Without a shared store (`counters` None: one process) only `revoked` is needed.
    """

    GENERATION = "tokens"

    def __init__(self, ttl: float = 10.0, max_entries: int = 10_000, *, counters: Counters | None = None,
                 check_every: float = 1.0) -> None:
        self.ttl, self.max_entries = ttl, max_entries
        self.counters, self.check_every = counters, check_every
        self._entries: dict[str, tuple[float, int, Principal]] = {}  # hash -> (until, generation, principal)
        self._generation = 0
        self._fresh_until = math.inf if counters is None else 0.0
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None

    def seen(self) -> int:
        """The generation now known: read it before the database, and `put` under it."""
        return self._generation

    def get(self, token_hash: str) -> Principal | None:
        hit = self._entries.get(token_hash)
        now = time.monotonic()
        if hit is None or hit[0] < now or hit[1] != self._generation or now >= self._fresh_until:
            return None
        return hit[2]

    def put(self, token_hash: str, principal: Principal, *, ttl: float | None = None,
            generation: int | None = None) -> None:
        """Remember for `ttl` seconds, or less if given less (a token that expires sooner), under the
        generation `seen` before the database was read."""
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        until = time.monotonic() + min(self.ttl, ttl if ttl is not None else self.ttl)
        self._entries[token_hash] = (until, self._generation if generation is None else generation, principal)

    def forget(self, institution_id: str | None = None) -> None:
        if institution_id is None:
            self._entries.clear()
        else:
            self._entries = {k: v for k, v in self._entries.items() if v[2].institution_id != institution_id}

    def revoked(self, institution_id: str) -> None:
        """An institution's tokens are being revoked: forget them here, and check the shared store answers
        (`LimitsUnavailable` otherwise, so the revocation is rolled back rather than left unannounced)."""
        self.forget(institution_id)
        self.advance()

    def advance(self) -> None:
        """Tell every process sharing the store to stop using what it has cached (after the commit)."""
        if self.counters is not None:
            self.observe(self.counters.advance(self.GENERATION))

    def observe(self, generation: int) -> None:
        if generation != self._generation:
            self._generation = generation
            self._entries = {}
        self._fresh_until = time.monotonic() + 2 * self.check_every

    def read_generation(self) -> None:
        if self.counters is not None:
            self.observe(self.counters.generation(self.GENERATION))

    def start(self) -> None:
        if self.counters is None or self._reader is not None:
            return
        self._stop.clear()
        self._reader = threading.Thread(target=self._read_loop, name="token-generation", daemon=True)
        self._reader.start()

    def stop(self) -> None:
        self._stop.set()
        if self._reader is not None:
            self._reader.join(timeout=5)
            self._reader = None

    def _read_loop(self) -> None:
        while True:
            try:
                self.read_generation()
            except LimitsUnavailable:
                log.warning("the shared limits store did not answer; tokens are read from the database")
            if self._stop.wait(self.check_every):
                return


def authenticate_token(
    session: Session, token: str, *, admin_token: str, cache: TokenCache | None = None
) -> Principal | None:
    if hmac.compare_digest(token.encode(), admin_token.encode()):
        return Principal(role=Role.admin, name="operator")
    token_hash = hash_token(token)
    if cache is not None and (hit := cache.get(token_hash)) is not None:
        return hit
    seen = cache.seen() if cache is not None else 0
    inst = store.get_institution_by_token_hash(session, token_hash)
    if inst is None:
        return None
    principal = Principal(role=Role(inst.role), name=inst.name, institution_id=inst.id)
    if cache is not None:
        cache.put(token_hash, principal, generation=seen)
    return principal
