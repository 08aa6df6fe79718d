"""The access log as a transparency log: integrate events into the Merkle tree, sign checkpoints, serve
proofs, and sign receipts that promise integration within the maximum merge delay.

The signing key: the key store's first key until a rotation; after one, the key the `log_keys` table marks
active. Every process checks that table on each checkpoint (under the integrator lock, so no checkpoint is
ever signed with a retired key) and on each integrator pass, so a rotation reaches every process without a
restart. A rotation (:meth:`TransparencyLog.rotate`) has the old key sign a final checkpoint and a handover
naming the new key (register_verifier.handover), all in one transaction under the integrator lock.

Integration runs off the request path: a request only inserts its event and a row in `log_pending`
(its own rows, no shared lock); the integrator, alone by advisory lock, gives pending events dense leaf
indexes in the order it finds them committed, appends their leaves and the subtree nodes they
complete, and signs a checkpoint.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from register.audit import hashing
from register_verifier import tree
from register.audit.leaf import EventLike, encode_leaf, format_time
from register.audit.note import Checkpoint, KeyChain, NoteSigner, NoteVerifier, SigningKey, sign_handover
from register.config import Settings
from register.crypto.keys import open_key_source
from register.crypto.log_key import LogKeyStore, LogKeyStoreError, raw_public
from register.errors import Conflict, InvalidInput, NotFound
from register.storage import log as store
from register.storage.models import LogCheckpoint, LogKey
from register.storage.types import utcnow

log = logging.getLogger("register.translog")
BATCH = 5000


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass(frozen=True)
class CheckpointView:
    size: int
    root_hash: bytes
    timestamp: int
    note: str

    @classmethod
    def of(cls, cp: LogCheckpoint) -> CheckpointView:
        return cls(size=cp.size, root_hash=cp.root_hash, timestamp=cp.timestamp, note=cp.note)

    def as_json(self) -> dict:
        return {"size": self.size, "root_hash": b64(self.root_hash), "timestamp": self.timestamp, "note": self.note}


class TransparencyLog:
    def __init__(self, key: SigningKey, *, origin: str, max_merge_delay: int, checkpoint_interval: float,
                 keys: LogKeyStore | None = None) -> None:
        """`key` is the log's first key; `keys`, the store that holds the keys a rotation adds (without it this
        process can neither rotate nor follow a rotation, and refuses to sign checkpoints after one)."""
        self.initial = NoteSigner(origin, key)
        self.signer = self.initial
        self.keys = keys
        self.origin = origin
        self.max_merge_delay = max_merge_delay
        self.checkpoint_interval = checkpoint_interval
        self._lock = threading.Lock()

    @property
    def public_key(self) -> bytes:
        return self.signer.public_bytes

    # --- keys --------------------------------------------------------------------------------

    def refresh(self, session: Session) -> NoteSigner:
        """Sign with the key the database marks active from now on. Raises LogKeyStoreError if this
        process's store does not hold it: better no checkpoint than one signed with the wrong key."""
        row = store.active_log_key(session)
        want = row.public_key if row is not None else self.initial.public_bytes
        if want != self.signer.public_bytes:
            key = self.keys.find(want) if self.keys is not None else None
            if key is None:
                raise LogKeyStoreError(f"the active log key {row.vkey if row else '?'} is not in this process's "
                                       "key store: not signing with another")
            with self._lock:
                self.signer = NoteSigner(self.origin, key)
            log.info("log key: now signing with %s", self.signer.verifier_key())
        return self.signer

    def refresh_at_start(self, sessions: sessionmaker[Session]) -> None:
        """At a process's start: sign receipts with the active key at once, though the key was rotated while
        this process was down (and though no integrator thread runs here). A database not made yet is
        logged (the integrator pass retries). A key store without the active key stops the start
        (LogKeyStoreError): a process must never serve receipts signed with a key the log has retired."""
        try:
            with sessions() as session:
                self.refresh(session)
        except SQLAlchemyError:
            log.warning("could not take up the active log key at start", exc_info=True)

    def rotate(self, session: Session, *, now: datetime | None = None) -> dict:
        """Hand the log over to a new key, inside the caller's transaction (commit it to publish).

        Under the integrator lock: integrate what is pending, have the old key sign a checkpoint of the tree
        and the handover naming the new key from that size, record both keys, then sign a checkpoint of the
        same tree with the new key. The new key is the first one the store holds that the log has not used
        (one left by an interrupted rotation, or one added to REGISTER_LOG_KEY), else a new one."""
        if self.keys is None:
            raise LogKeyStoreError("this log has no key store to take a new key from")
        if not store.try_lock_integrator(session):
            raise Conflict("the integrator is busy; try again", code="log_busy")
        old = self.refresh(session)
        while self.integrate(session) == BATCH:
            pass
        now = now or utcnow()
        rows = store.log_keys(session)
        used = {r.public_key for r in rows} | {self.initial.public_bytes, old.public_bytes}
        fresh = [pk for pk in self.keys.public_keys() if pk not in used]
        key = self.keys.find(fresh[0]) if fresh else self.keys.create()
        assert key is not None
        new = NoteSigner(self.origin, key)
        size = store.tree_size(session)
        self._sign_checkpoint(session, old, size, now)
        note = sign_handover(old, new, from_size=size, timestamp=int(now.timestamp()))
        current = store.active_log_key(session) or LogKey(vkey=old.verifier_key(), public_key=old.public_bytes,
                                                          state="active", from_size=0, created_at=now)
        store.hand_over_log_key(session, old=current, new=LogKey(
            vkey=new.verifier_key(), public_key=raw_public(key), state="active", from_size=size,
            handover_note=note.decode(), created_at=now))
        with self._lock:
            self.signer = new
        self._sign_checkpoint(session, new, size, now)
        return {"active": new.verifier_key(), "retired": old.verifier_key(), "from_size": size,
                "handover": note.decode()}

    def key_chain(self, session: Session) -> KeyChain:
        """The log's keys, first to active, each reached through its handover (checked here too)."""
        rows = store.log_keys(session)
        chain = KeyChain.start(NoteVerifier.from_vkey(rows[0].vkey) if rows else self.initial.verifier())
        for row in rows[1:]:
            chain.follow((row.handover_note or "").encode())
        return chain

    def keys_info(self, session: Session) -> dict:
        """For GET /v1/audit/log-keys: every key the log has signed with, and the handovers between them."""
        rows = store.log_keys(session)
        if not rows:  # never rotated: the first key signs (in this process, whatever it was refreshed to)
            return {"origin": self.origin, "active": self.initial.verifier_key(), "keys": [
                {"vkey": self.initial.verifier_key(), "state": "active", "from_size": 0, "handover": None}]}
        active = next(r.vkey for r in rows if r.state == "active")
        return {"origin": self.origin, "active": active, "keys": [
            {"vkey": r.vkey, "state": r.state, "from_size": r.from_size, "handover": r.handover_note} for r in rows]}

    # --- writing -----------------------------------------------------------------------------

    def integrate(self, session: Session, *, now: datetime | None = None, batch: int = BATCH) -> int:
        """Integrate up to `batch` pending events. Returns how many; 0 if another integrator holds the lock."""
        if not store.try_lock_integrator(session):
            return 0
        events = store.pending_events(session, batch)
        if not events:
            return 0
        size = store.tree_size(session)
        hashes = [hashing.leaf_hash(encode_leaf(e)) for e in events]
        nodes = tree.append_nodes(size, hashes, store.DbNodeReader(session))
        now = now or utcnow()
        rows = [
            {"leaf_index": size + i, "event_seq": e.seq, "leaf_hash": h, "integrated_at": now}
            for i, (e, h) in enumerate(zip(events, hashes, strict=True))
        ]
        store.add_leaves(session, rows, nodes, [e.seq for e in events])
        return len(events)

    def checkpoint(self, session: Session, *, now: datetime | None = None, force: bool = False) -> LogCheckpoint | None:
        """Sign a checkpoint of the current tree if it grew and the last one is older than the interval.
        With `force` (on demand), sign one now unless the latest already says this size at this second.
        Returns the checkpoint made (or, forced, the current one), or None."""
        now = now or utcnow()
        size = store.tree_size(session)
        last = store.latest_checkpoint(session)
        if last is not None:
            if last.size == size and (not force or last.timestamp == int(now.timestamp())):
                return last if force else None
            if not force and now.timestamp() - last.timestamp < self.checkpoint_interval:
                return None
        return self._sign_checkpoint(session, self.refresh(session), size, now)

    def _sign_checkpoint(self, session: Session, signer: NoteSigner, size: int, now: datetime) -> LogCheckpoint:
        root = tree.root(store.DbNodeReader(session), size) if size else hashing.EMPTY_ROOT
        cp = Checkpoint(origin=self.origin, size=size, root_hash=root, timestamp=int(now.timestamp()))
        note = signer.sign(cp.to_body()).decode()
        return store.add_checkpoint(session, LogCheckpoint(size=size, root_hash=root, timestamp=cp.timestamp,
                                                           note=note))

    def integrate_and_checkpoint(self, session: Session) -> LogCheckpoint | None:
        """On demand, inside the caller's transaction: integrate everything pending and sign a checkpoint
        now. If another integrator holds the lock, it will checkpoint soon: return the latest one."""
        if not store.try_lock_integrator(session):
            return store.latest_checkpoint(session)
        while self.integrate(session) == BATCH:
            pass
        return self.checkpoint(session, force=True)

    def run_once(self, sessions: sessionmaker[Session], *, force_checkpoint: bool = False) -> int:
        """One integrator pass: pick up a rotated key, drain the queue in batches, then checkpoint. Returns
        events integrated."""
        with sessions() as session:
            self.refresh(session)
        total = 0
        while True:
            with sessions.begin() as session:
                n = self.integrate(session)
            total += n
            if n < BATCH:
                break
        with sessions.begin() as session:
            if store.try_lock_integrator(session):
                self.checkpoint(session, force=force_checkpoint)
        return total

    # --- receipts ----------------------------------------------------------------------------

    def receipt(self, event: EventLike) -> dict:
        """A signed promise that this event will be in the tree within the maximum merge delay."""
        h = hashing.leaf_hash(encode_leaf(event))
        ts = int(event.occurred_at.timestamp())
        body = (f"{self.origin}/receipt\n{event.id}\n{b64(h)}\nTimestamp: {ts}\n"
                f"Max-Merge-Delay: {self.max_merge_delay}\n").encode()  # fmt: skip
        return {
            "event_id": event.id,
            "leaf_hash": b64(h),
            "occurred_at": format_time(event.occurred_at),
            "max_merge_delay_seconds": self.max_merge_delay,
            "note": self.signer.sign(body).decode(),
        }

    # --- reading -----------------------------------------------------------------------------

    def key_info(self, session: Session | None = None) -> dict:
        """The active key (the database's word when a session is given, else this process's)."""
        row = store.active_log_key(session) if session is not None else None
        vkey, public = (row.vkey, row.public_key) if row else (self.signer.verifier_key(), self.signer.public_bytes)
        return {
            "origin": self.origin,
            "vkey": vkey,
            "algorithm": "Ed25519",
            "public_key": b64(public),
            "max_merge_delay_seconds": self.max_merge_delay,
        }


def latest(session: Session) -> CheckpointView:
    cp = store.latest_checkpoint(session)
    if cp is None:
        raise NotFound("no checkpoint has been signed yet", code="no_checkpoint")
    return CheckpointView.of(cp)


def checkpoints(session: Session, *, since: int, limit: int) -> list[CheckpointView]:
    """Signed checkpoints of at least tree size `since`, in the order they were made."""
    return [CheckpointView.of(cp) for cp in store.checkpoints_since(session, since, limit)]


def _check_size(session: Session, tree_size: int) -> None:
    size = store.tree_size(session)
    if tree_size > size:
        raise InvalidInput(f"tree_size {tree_size} is larger than the tree ({size})", code="invalid_tree_size")


def inclusion(session: Session, *, leaf_index: int | None, leaf_hash: bytes | None, tree_size: int) -> dict:
    _check_size(session, tree_size)
    if leaf_hash is not None:
        leaf = store.leaf_by_hash(session, leaf_hash)
        if leaf is None or leaf.leaf_index >= tree_size:
            raise NotFound(f"no leaf with that hash in the tree of size {tree_size} (yet)")
        leaf_index = leaf.leaf_index
    assert leaf_index is not None
    if not 0 <= leaf_index < tree_size:
        raise InvalidInput(f"leaf_index must be below tree_size {tree_size}", code="invalid_leaf_index")
    reader = store.DbNodeReader(session)
    proof = tree.inclusion_proof(reader, leaf_index, tree_size)
    (h,) = reader.get_nodes([(0, leaf_index)])
    return {"leaf_index": leaf_index, "tree_size": tree_size, "leaf_hash": b64(h), "proof": [b64(p) for p in proof]}


def consistency(session: Session, *, first: int, second: int) -> dict:
    _check_size(session, second)
    if not 0 <= first <= second:
        raise InvalidInput("need 0 <= first <= second", code="invalid_tree_size")
    proof = tree.consistency_proof(store.DbNodeReader(session), first, second)
    return {"first": first, "second": second, "proof": [b64(p) for p in proof]}


MAX_LEAVES = 1000


def leaves(session: Session, *, start: int, end: int) -> dict:
    """Raw leaf bytes, re-encoded from the stored events: a changed or missing event shows here."""
    size = store.tree_size(session)
    if not 0 <= start <= end:
        raise InvalidInput("need 0 <= start <= end", code="invalid_range")
    end = min(end, size, start + MAX_LEAVES)
    out = []
    for leaf, event in store.leaves_with_events(session, start, end):
        if event is None:  # serve up to the gap; the gap itself is a 404 naming the leaf
            if not out:
                raise NotFound(f"the event of leaf {leaf.leaf_index} is missing", code="leaf_event_missing")
            break
        out.append(b64(encode_leaf(event)))
    return {"start": start, "end": start + len(out), "leaves": out}


class Integrator:
    """The background integrator thread: runs `log.run_once` every `interval` seconds until stopped."""

    def __init__(self, tlog: TransparencyLog, sessions: sessionmaker[Session], interval: float) -> None:
        self.tlog, self.sessions, self.interval = tlog, sessions, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="log-integrator", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tlog.run_once(self.sessions)
            except Exception:  # noqa: BLE001 - keep integrating; the failure is logged and retried
                log.exception("log integration failed; will retry")


@contextmanager
def operator_log(settings: Settings) -> Iterator[tuple[sessionmaker[Session], TransparencyLog]]:
    """Sessions on the configured database and the log with its key store, for an operator command."""
    from register.storage.db import make_engine, make_sessionmaker

    engine = make_engine(settings.resolved_database_url, pool_size=1)
    keys = open_key_source(settings).log
    try:
        yield make_sessionmaker(engine), TransparencyLog(
            keys.initial(), origin=settings.log_origin, max_merge_delay=settings.max_merge_delay_seconds,
            checkpoint_interval=settings.checkpoint_interval_seconds, keys=keys)
    finally:
        engine.dispose()
