"""Inclusion proofs of a signal's evidence (SPEC.md "Signals", `?proofs=true`): each access event the
regulator is shown as evidence, as its leaf (the event's canonical bytes) with an inclusion proof against
the latest signed checkpoint, so the regulator's own verifier (register_verifier.evidence) can check that
the events are the log's, unaltered, without trusting the register's answer.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

from sqlalchemy.orm import Session

from register.audit.leaf import encode_leaf
from register.services import translog
from register.storage import log as log_store
from register.storage.signals import events_by_ids


def evidence_proofs(session: Session, event_ids: Iterable[str]) -> tuple[dict[str, Any] | None, dict[str, dict]]:
    """The latest signed checkpoint (None before the first) and, by event id, `{event_id, leaf_index, leaf,
    inclusion}` for each of these events in it; an event not yet integrated has none (ask again after the
    log's merge delay)."""
    cp = log_store.latest_checkpoint(session)
    if cp is None:
        return None, {}
    view = translog.CheckpointView.of(cp)
    events = events_by_ids(session, sorted(set(event_ids)))
    indexes = log_store.leaf_indexes_for(session, [e.seq for e in events if e.seq is not None])
    out: dict[str, dict] = {}
    for event in events:
        index = indexes.get(event.seq) if event.seq is not None else None
        if index is None or index >= view.size:
            continue
        out[event.id] = {
            "event_id": event.id, "leaf_index": index, "leaf": base64.b64encode(encode_leaf(event)).decode(),
            "inclusion": translog.inclusion(session, leaf_index=index, leaf_hash=None, tree_size=view.size),
        }
    return view.as_json(), out
