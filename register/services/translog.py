"""The access log as a transparency log: integrate events into the Merkle tree, sign checkpoints, serve
proofs, and sign receipts that promise integration within the maximum merge delay.

Integration runs off the request path: a request only inserts its event and a row in `log_pending`
(its own rows, no shared lock); the integrator, alone by advisory lock, gives pending events dense leaf
indexes in the order it finds them committed, appends their leaves and the subtree nodes they
complete, and signs a checkpoint.
"""

from __future__ import annotations

import base64
import logging
import threading
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session, sessionmaker

from register.audit import hashing, tree
from register.audit.leaf import EventLike, encode_leaf, format_time
from register.audit.note import Checkpoint, NoteSigner
from register.errors import InvalidInput, NotFound
from register.storage import log as store
from register.storage.models import LogCheckpoint
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
    def __init__(self, key: Ed25519PrivateKey, *, origin: str, max_merge_delay: int, checkpoint_interval: float) -> None:
        self.signer = NoteSigner(origin, key)
        self.origin = origin
        self.max_merge_delay = max_merge_delay
        self.checkpoint_interval = checkpoint_interval
        self.public_key = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

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
        root = tree.root(store.DbNodeReader(session), size) if size else hashing.EMPTY_ROOT
        cp = Checkpoint(origin=self.origin, size=size, root_hash=root, timestamp=int(now.timestamp()))
        note = self.signer.sign(cp.to_body()).decode()
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
        """One integrator pass: drain the queue in batches, then checkpoint. Returns events integrated."""
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

    def key_info(self) -> dict:
        return {
            "origin": self.origin,
            "vkey": self.signer.verifier_key(),
            "algorithm": "Ed25519",
            "public_key": b64(self.public_key),
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
