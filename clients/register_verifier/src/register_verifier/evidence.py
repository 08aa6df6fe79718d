"""The regulator's check of a signal's evidence (`GET /v1/regulator/signals?proofs=true`).

The register answers with a signed checkpoint and, for each evidence event, its leaf (the event's
canonical JSON) and an inclusion proof. `verify_evidence` trusts none of it: the checkpoint must be
signed by the pinned log key (or a key of its handover chain), each leaf must be the event it claims to
be (its `id`), and each proof must lead from the leaf's hash to the checkpoint's root. It returns the
verified events (the leaves, parsed), which the regulator then reads instead of the register's words.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any

from .handover import KeyChain
from .merkle import ProofError, leaf_hash, verify_inclusion
from .note import Checkpoint, NoteVerifier
from .verify import VerificationError, open_checkpoint, open_checkpoint_in_chain


def _b64(value: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise VerificationError(f"{what} is not base64", {"value": str(value)[:100]}) from None


def verify_evidence(
    key: NoteVerifier | KeyChain, checkpoint_note: str, proofs: Sequence[Mapping[str, Any]]
) -> tuple[Checkpoint, list[dict[str, Any]]]:
    """The opened checkpoint and each proof's event (its leaf, parsed), in the order given; raises
    `VerificationError` at the first thing that does not hold."""
    note = checkpoint_note.encode()
    cp = open_checkpoint_in_chain(key, note) if isinstance(key, KeyChain) else open_checkpoint(key, note)
    events = []
    for p in proofs:
        event_id = p.get("event_id")
        leaf = _b64(p.get("leaf"), f"the leaf of event {event_id}")
        try:
            doc = json.loads(leaf)
        except ValueError:
            raise VerificationError(f"the leaf of event {event_id} is not JSON", {"event_id": event_id}) from None
        if not isinstance(doc, dict) or doc.get("id") != event_id:
            raise VerificationError(f"the leaf given for event {event_id} is another event's",
                                    {"event_id": event_id, "leaf_id": doc.get("id") if isinstance(doc, dict) else None})
        inclusion = p.get("inclusion") or {}
        index = p.get("leaf_index")
        if inclusion.get("leaf_index") != index or inclusion.get("tree_size") != cp.size:
            raise VerificationError(f"the proof of event {event_id} is not for leaf {index} of the checkpoint",
                                    {"event_id": event_id, "checkpoint_size": cp.size,
                                     "proof": {k: inclusion.get(k) for k in ("leaf_index", "tree_size")}})
        try:
            verify_inclusion(leaf_hash(leaf), int(index), cp.size,
                             [_b64(h, "a proof hash") for h in inclusion.get("proof", [])], cp.root_hash)
        except (ProofError, TypeError, ValueError) as exc:
            raise VerificationError(f"event {event_id} is not in the signed log as given: {exc}",
                                    {"event_id": event_id, "leaf_index": index, "checkpoint_size": cp.size}) from None
        events.append(doc)
    return cp, events
