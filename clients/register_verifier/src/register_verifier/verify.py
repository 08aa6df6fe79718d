"""The regulator's checks of the register's audit log.

Every check is a function that returns a small result object or raises
:class:`VerificationError` with a message and an ``evidence`` dict (hashes
as base64, sizes, indices, the signed notes involved) that can be filed as
is.  :func:`run_verify` strings them together the way ``register-verifier
verify`` does and commits the state directory only when all of them passed.

Trust model: the only thing trusted is the pinned log key.  Everything the
register says is believed only as far as a signature by that key, or a
Merkle proof to a root inside such a signature, backs it.  The JSON
convenience fields are compared with the signed values and a disagreement is
a failure.

Three kinds of error leave this module:

* :class:`VerificationError` -- the log (or a receipt) is provably wrong;
* :class:`UsageError` -- the request cannot be carried out as asked
  (no pinned key, key mismatch, leaf index past the end, unreadable receipt file);
* :class:`register_verifier.client.ClientError` / :class:`register_verifier.state.StateError`
  -- the register or the state dir could not be used.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import pathlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from .client import (
    MAX_LEAVES_PER_CALL,
    CheckpointResponse,
    ClientError,
    HTTPStatusError,
    LeafPage,
    LogKey,
    RegisterClient,
    b64decode_strict,
)
from .merkle import EMPTY_ROOT, HASH_SIZE, ProofError, leaf_hash, node_hash, verify_consistency, verify_inclusion
from .handover import Handover, KeyChain
from .note import Checkpoint, NoteError, NoteVerifier
from .tree import CompactRange
from .state import State, StateError

__all__ = [
    "VerificationError",
    "UsageError",
    "CompactRange",
    "ConsistencyResult",
    "LeafResult",
    "FullResult",
    "Receipt",
    "ReceiptStatement",
    "ReceiptResult",
    "VerifyResult",
    "verifier_from_log_key",
    "open_checkpoint",
    "verify_checkpoint_response",
    "chain_from_state",
    "follow_handovers",
    "open_checkpoint_in_chain",
    "verify_append_only",
    "verify_leaf",
    "verify_full",
    "find_first_bad_leaf",
    "parse_receipt",
    "parse_receipt_body",
    "load_receipt_file",
    "verify_receipt",
    "run_verify",
]

RECEIPT_SUFFIX = "/receipt"


class VerificationError(Exception):
    """A check failed.  ``evidence`` is a JSON-serialisable dict (bytes as base64)."""

    def __init__(self, message: str, evidence: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.evidence: dict[str, Any] = _jsonable(evidence or {})


class UsageError(Exception):
    """The verification cannot be carried out as requested (not evidence against the log)."""


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return b64(bytes(value))
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def iso(ts: float) -> str:
    """POSIX seconds -> RFC 3339 UTC."""
    return _dt.datetime.fromtimestamp(int(ts), _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _note_text(note: bytes) -> str:
    return note.decode("utf-8", "replace")


def _cp_evidence(cp: Checkpoint) -> dict[str, Any]:
    return {"size": cp.size, "root_hash": b64(cp.root_hash), "timestamp": cp.timestamp}


def _proof_ok(fn: Callable[[], None]) -> bool:
    try:
        fn()
    except ProofError:
        return False
    return True


# --------------------------------------------------------------------------
# Keys and checkpoints
# --------------------------------------------------------------------------


def _vkey_public_key(vkey: str) -> bytes:
    # <name>+<hex key id>+<base64>: names and ids hold no "+", but base64 may.
    return b64decode_strict(vkey.split("+", 2)[2])[1:]


def parse_vkey(vkey: str) -> NoteVerifier:
    """A verifier key from the command line; :class:`UsageError` if malformed."""
    try:
        return NoteVerifier.from_vkey(vkey.strip())
    except NoteError as exc:
        raise UsageError(f"invalid log key {vkey.strip()!r}: {exc}") from None


def verifier_from_log_key(info: LogKey) -> NoteVerifier:
    """Check ``/v1/audit/log-key`` is self-consistent and return its verifier (trust on first use)."""
    try:
        verifier = NoteVerifier.from_vkey(info.vkey)
    except NoteError as exc:
        raise VerificationError(
            "the log key published by the register is malformed", {"vkey": info.vkey, "reason": str(exc)}
        ) from None
    problems = []
    if info.algorithm != "Ed25519":
        problems.append(f"algorithm {info.algorithm!r} is not 'Ed25519'")
    if info.origin != verifier.name:
        problems.append(f"origin {info.origin!r} is not the key name {verifier.name!r}")
    if info.public_key != _vkey_public_key(info.vkey):
        problems.append("public_key is not the key inside vkey")
    if problems:
        raise VerificationError(
            "the log key published by the register is inconsistent: " + "; ".join(problems),
            {"origin": info.origin, "vkey": info.vkey, "algorithm": info.algorithm, "public_key": info.public_key},
        )
    return verifier


def open_checkpoint(verifier: NoteVerifier, note: bytes) -> Checkpoint:
    """Verify a checkpoint note's signature with the pinned key and parse it strictly."""
    try:
        text = verifier.open(note)
    except NoteError as exc:
        raise VerificationError(
            "checkpoint not signed by the pinned log key",
            {"pinned_key": verifier.verifier_key(), "reason": str(exc), "note": _note_text(note)},
        ) from None
    try:
        cp = Checkpoint.parse_body(text)
    except NoteError as exc:
        raise VerificationError(
            f"checkpoint is signed by the log key but is not a valid checkpoint: {exc}",
            {"note": _note_text(note)},
        ) from None
    if cp.origin != verifier.name:
        raise VerificationError(
            f"checkpoint origin {cp.origin!r} does not match the pinned log key name {verifier.name!r}",
            {"expected_origin": verifier.name, "actual_origin": cp.origin, "note": _note_text(note)},
        )
    if cp.size == 0 and cp.root_hash != EMPTY_ROOT:
        raise VerificationError(
            "signed checkpoint of size 0 does not carry the empty-tree root",
            {"expected_root": EMPTY_ROOT, "actual_root": cp.root_hash, "note": _note_text(note)},
        )
    return cp


def verify_checkpoint_response(verifier: NoteVerifier | KeyChain, response: CheckpointResponse) -> Checkpoint:
    """Open the checkpoint's note and require the JSON convenience fields to agree with it."""
    if isinstance(verifier, KeyChain):
        cp = open_checkpoint_in_chain(verifier, response.note)
    else:
        cp = open_checkpoint(verifier, response.note)
    diffs = {}
    if response.size != cp.size:
        diffs["size"] = {"json": response.size, "note": cp.size}
    if response.root_hash != cp.root_hash:
        diffs["root_hash"] = {"json": response.root_hash, "note": cp.root_hash}
    if response.timestamp != cp.timestamp:
        diffs["timestamp"] = {"json": response.timestamp, "note": cp.timestamp}
    if diffs:
        raise VerificationError(
            "the checkpoint JSON disagrees with its signed note (" + ", ".join(diffs) + ")",
            {"disagreements": diffs, "note": _note_text(response.note)},
        )
    return cp


# --------------------------------------------------------------------------
# Key handovers (SPEC.md section 4, "Log-key handover")
# --------------------------------------------------------------------------


def chain_from_state(pinned: NoteVerifier, notes: Sequence[bytes]) -> KeyChain:
    """The key chain a state dir recorded: from the key pinned first, through each handover followed, to the
    pinned key.  Every handover is checked again; :class:`StateError` if the record does not hold together."""
    if not notes:
        return KeyChain.start(pinned)
    try:
        first = notes[0]
        first_key = Handover.parse_body(first[: first.rfind(b"\n\n") + 1]).old_key
        chain = KeyChain.start(NoteVerifier.from_vkey(first_key))
        for note in notes:
            chain.follow(note)
    except NoteError as exc:
        raise StateError(f"the key handovers recorded in the state dir do not verify: {exc}") from None
    if chain.current.verifier_key() != pinned.verifier_key():
        raise StateError("the key handovers recorded in the state dir do not lead to the pinned key")
    return chain


def follow_handovers(client: RegisterClient, chain: KeyChain) -> list[bytes]:
    """Follow the handovers the register publishes from the chain's current key; the notes followed.

    Each must be signed by the key before it (the pinned one first) and by the key it names; anything else
    is a :class:`VerificationError` (a forged handover), and the chain is left as it was.
    """
    try:
        info = client.log_keys()
    except HTTPStatusError as exc:
        if exc.status == 404:  # a register that never published a handover
            return []
        raise
    current = chain.current.verifier_key()
    try:
        canonical = [NoteVerifier.from_vkey(v).verifier_key() for v in info.vkeys]
    except NoteError as exc:
        raise VerificationError("the register's list of log keys holds a malformed key",
                                {"keys": list(info.vkeys), "reason": str(exc)}) from None
    if current not in canonical:
        return []
    trial = KeyChain(list(chain.keys), list(chain.from_sizes), list(chain.handovers), list(chain.notes))
    followed = []
    for i in range(canonical.index(current) + 1, len(canonical)):
        note = info.handovers[i]
        try:
            if note is None:
                raise NoteError("no handover note")
            handover = trial.follow(note)
            if NoteVerifier.from_vkey(handover.new_key).verifier_key() != canonical[i]:
                raise NoteError("the handover names another key than the list")
        except NoteError as exc:
            raise VerificationError(
                f"the handover to log key {info.vkeys[i]} does not verify from the key {trial.current.verifier_key()}"
                f" (forged or altered): {exc}",
                {"trusted_key": trial.current.verifier_key(), "claimed_key": info.vkeys[i],
                 "handover": _note_text(note or b""), "reason": str(exc)},
            ) from None
        followed.append(note)
    chain.keys, chain.from_sizes, chain.handovers, chain.notes = trial.keys, trial.from_sizes, trial.handovers, trial.notes
    return followed


def open_checkpoint_in_chain(chain: KeyChain, note: bytes) -> Checkpoint:
    """Open a checkpoint signed by any key of the chain, within that key's tree sizes.

    A retired key signs checkpoints only up to the size at which it handed over; the key after it only from
    that size on.  A note no key of the chain signs is refused as not signed by the pinned key.
    """
    try:
        i = chain.signer_of(note)
    except NoteError:
        i = len(chain.keys) - 1  # open_checkpoint names the pinned key in its refusal
    cp = open_checkpoint(chain.keys[i], note)
    until = chain.until_size(i)
    if until is not None and cp.size > until:
        raise VerificationError(
            f"checkpoint of size {cp.size} is signed by a retired log key, which handed over at size {until}",
            {"key": chain.keys[i].verifier_key(), "handover_size": until, "note": _note_text(note)},
        )
    if cp.size < chain.from_sizes[i]:
        raise VerificationError(
            f"checkpoint of size {cp.size} is signed by a key that signs only from size {chain.from_sizes[i]}",
            {"key": chain.keys[i].verifier_key(), "from_size": chain.from_sizes[i], "note": _note_text(note)},
        )
    return cp


# --------------------------------------------------------------------------
# Append-only
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsistencyResult:
    old_size: int
    new_size: int
    proof_length: int  # 0 when no proof was needed (same size or old size 0)


def verify_append_only(
    client: RegisterClient,
    old: Checkpoint,
    new: Checkpoint,
    *,
    old_note: bytes = b"",
    new_note: bytes = b"",
) -> ConsistencyResult:
    """The new checkpoint must extend the last verified one: no shrink, no fork, time moves forward."""
    notes = {"previous_note": _note_text(old_note), "new_note": _note_text(new_note)}
    if new.size < old.size:
        raise VerificationError(
            f"log shrank from {old.size} to {new.size}",
            {"previous": _cp_evidence(old), "new": _cp_evidence(new), **notes},
        )
    if new.size == old.size and new.root_hash != old.root_hash:
        raise VerificationError(
            f"log forked: two different signed roots for the same size {new.size}",
            {"size": new.size, "previous_root": old.root_hash, "new_root": new.root_hash, **notes},
        )
    if new.timestamp < old.timestamp:
        raise VerificationError(
            f"checkpoint timestamp went backwards from {old.timestamp} ({iso(old.timestamp)}) "
            f"to {new.timestamp} ({iso(new.timestamp)})",
            {"previous": _cp_evidence(old), "new": _cp_evidence(new), **notes},
        )
    if new.size == old.size:
        return ConsistencyResult(old.size, new.size, 0)
    if old.size == 0:  # the empty tree is a prefix of every tree; its root was checked on open
        return ConsistencyResult(0, new.size, 0)
    answer = client.consistency_proof(old.size, new.size)
    evidence = {
        "first": old.size,
        "second": new.size,
        "first_root": old.root_hash,
        "second_root": new.root_hash,
        "proof": list(answer.proof),
        **notes,
    }
    if (answer.first, answer.second) != (old.size, new.size):
        raise VerificationError(
            f"asked for a consistency proof {old.size} -> {new.size}, "
            f"the register answered for {answer.first} -> {answer.second}",
            {**evidence, "answer_first": answer.first, "answer_second": answer.second},
        )
    try:
        verify_consistency(old.size, new.size, list(answer.proof), old.root_hash, new.root_hash)
    except ProofError as exc:
        raise VerificationError(
            f"consistency proof from size {old.size} to {new.size} does not verify: "
            "the new checkpoint is not an append-only extension of the last verified one",
            {**evidence, "reason": str(exc)},
        ) from None
    return ConsistencyResult(old.size, new.size, len(answer.proof))


# --------------------------------------------------------------------------
# Leaves
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class LeafResult:
    index: int
    leaf_hash: bytes


def _check_leaf_against_log(
    client: RegisterClient, cp: Checkpoint, index: int, served: bytes, extra: dict[str, Any]
) -> dict[str, Any]:
    """Evidence for a leaf whose served bytes are suspected wrong, using an inclusion proof."""
    answer = client.inclusion_proof(index, cp.size)
    ours = leaf_hash(served)
    served_ok = _proof_ok(lambda: verify_inclusion(ours, index, cp.size, list(answer.proof), cp.root_hash))
    logged_ok = _proof_ok(
        lambda: verify_inclusion(answer.leaf_hash, index, cp.size, list(answer.proof), cp.root_hash)
    )
    return {
        "leaf_index": index,
        "tree_size": cp.size,
        "signed_root": cp.root_hash,
        "served_leaf_bytes": served,
        "served_leaf_hash": ours,
        "served_leaf_hash_verifies": served_ok,
        "logged_leaf_hash": answer.leaf_hash,
        "logged_leaf_hash_verifies": logged_ok,
        "inclusion_proof": list(answer.proof),
        **extra,
    }


def _withheld(exc: HTTPStatusError, start: int, cp: Checkpoint) -> VerificationError:
    """A register that will not serve a leaf its own signed checkpoint covers has lost or removed it."""
    return VerificationError(
        f"the register will not serve leaf {start}, which its signed checkpoint of size {cp.size} covers "
        f"({exc.status} {exc.problem.get('code', '')}): the event behind it was removed or lost",
        {"leaf_index": start, "tree_size": cp.size, "signed_root": cp.root_hash, "problem": exc.problem},
    )


def _leaves(client: RegisterClient, start: int, end: int, cp: Checkpoint) -> LeafPage:
    try:
        return client.leaves(start, end)
    except HTTPStatusError as exc:
        if exc.status in (404, 410):
            raise _withheld(exc, start, cp) from None
        raise


def verify_leaf(client: RegisterClient, cp: Checkpoint, index: int) -> LeafResult:
    """Fetch leaf ``index``, hash it, and verify its inclusion proof against the signed root."""
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < cp.size:
        raise UsageError(f"leaf index {index} is not below the log size {cp.size}")
    page = _leaves(client, index, index + 1, cp)
    served = page.leaves[0]
    ours = leaf_hash(served)
    answer = client.inclusion_proof(index, cp.size)
    base = {
        "leaf_index": index,
        "tree_size": cp.size,
        "signed_root": cp.root_hash,
        "served_leaf_bytes": served,
        "served_leaf_hash": ours,
        "logged_leaf_hash": answer.leaf_hash,
        "inclusion_proof": list(answer.proof),
    }
    if (answer.leaf_index, answer.tree_size) != (index, cp.size):
        raise VerificationError(
            f"asked for an inclusion proof of leaf {index} in size {cp.size}, "
            f"the register answered for leaf {answer.leaf_index} in size {answer.tree_size}",
            base,
        )
    try:
        verify_inclusion(ours, index, cp.size, list(answer.proof), cp.root_hash)
    except ProofError as exc:
        logged_ok = _proof_ok(
            lambda: verify_inclusion(answer.leaf_hash, index, cp.size, list(answer.proof), cp.root_hash)
        )
        if logged_ok:
            msg = (
                f"leaf {index}: the bytes the register serves are not the leaf in the signed log "
                "(the inclusion proof verifies for a different leaf hash)"
            )
        else:
            msg = f"leaf {index}: inclusion proof does not verify against the signed root of size {cp.size}"
        raise VerificationError(msg, {**base, "logged_leaf_hash_verifies": logged_ok, "reason": str(exc)}) from None
    if answer.leaf_hash != ours:
        raise VerificationError(
            f"leaf {index}: the inclusion answer's leaf_hash disagrees with the hash of the leaf bytes "
            "(the proof verifies for the bytes)",
            base,
        )
    return LeafResult(index, ours)


@dataclass(frozen=True)
class FullResult:
    size: int
    root_hash: bytes
    pages: int
    max_compact_range: int  # hashes held at once by the streaming root (O(log n))


def verify_full(
    client: RegisterClient,
    cp: Checkpoint,
    *,
    page_size: int = MAX_LEAVES_PER_CALL,
    progress: Callable[[int, int], None] | None = None,
) -> FullResult:
    """Re-hash every leaf ``[0, size)`` and compare the root with the signed one.

    Streams the leaves page by page into a :class:`CompactRange`, so memory
    is one page plus ``O(log n)`` hashes.  On a mismatch,
    :func:`find_first_bad_leaf` pins down the first leaf whose served bytes
    are not the logged leaf.
    """
    if cp.size == 0:
        if cp.root_hash != EMPTY_ROOT:  # pragma: no cover - rejected by open_checkpoint already
            raise VerificationError("size-0 checkpoint without the empty root", {"root": cp.root_hash})
        return FullResult(0, EMPTY_ROOT, 0, 0)
    cr = CompactRange()
    pages = 0
    peak = 0
    pos = 0
    page_size = max(1, min(page_size, MAX_LEAVES_PER_CALL))
    while pos < cp.size:
        page = _leaves(client, pos, min(pos + page_size, cp.size), cp)
        for data in page.leaves:
            cr.append(leaf_hash(data))
            peak = max(peak, len(cr))
        pages += 1
        pos = page.end
        if progress:
            progress(page.end, cp.size)
    computed = cr.root()
    if computed == cp.root_hash:
        return FullResult(cp.size, computed, pages, peak)
    try:
        bad, evidence = find_first_bad_leaf(client, cp, page_size=page_size)
    except ClientError as exc:  # the mismatch stands even if the search for the culprit breaks off
        raise VerificationError(
            f"full audit: the {cp.size} leaves served do not hash to the signed root "
            f"(could not locate the first bad leaf: {exc})",
            {"tree_size": cp.size, "signed_root": cp.root_hash, "computed_root": computed},
        ) from None
    evidence = {"computed_root": computed, **evidence}
    if bad is None:
        raise VerificationError(
            f"full audit: the {cp.size} leaves served hash to a different root than the signed one, "
            "and a second pass served leaves that do match it (the register serves inconsistent data)",
            evidence,
        )
    raise VerificationError(
        f"full audit: the leaves served do not hash to the signed root of size {cp.size}; "
        f"first bad leaf index {bad}",
        evidence,
    )


def find_first_bad_leaf(
    client: RegisterClient, cp: Checkpoint, *, page_size: int = MAX_LEAVES_PER_CALL
) -> tuple[int | None, dict[str, Any]]:
    """The smallest index whose served leaf differs from the logged one, with evidence (JSON-ready).

    Returns ``(None, evidence)`` if the served leaves all match the signed root this time.

    Method (documented choice): a second streaming pass.  After each page
    ending at ``m`` the root of the served prefix ``[0, m)`` is checked with a
    consistency proof ``m -> size`` against the signed root ("prefix is
    good" is monotone in ``m``).  In the first page that fails, a binary
    search over the page with the same prefix test (about log2(page) more
    proofs) finds the first bad index; an inclusion proof for it is then
    fetched as evidence (served vs logged leaf hash).  Cost: one extra pass
    over the leaves, one consistency proof per page, ~10 more proofs.
    Memory: one page plus O(log n) hashes.
    """
    size, root = cp.size, cp.root_hash

    def prefix_good(m: int, prefix_root: bytes) -> bool:
        if m == size:
            return prefix_root == root
        answer = client.consistency_proof(m, size)
        if (answer.first, answer.second) != (m, size):
            return False
        return _proof_ok(lambda: verify_consistency(m, size, list(answer.proof), prefix_root, root))

    cr = CompactRange()
    for page in client.iter_leaf_pages(0, size, page_size):
        hashes = [leaf_hash(d) for d in page.leaves]
        before = cr.copy()
        cr.extend(hashes)
        if prefix_good(page.end, cr.root()):
            continue
        lo, hi = page.start, page.end  # prefix lo is good, prefix hi is bad
        while hi - lo > 1:
            mid = (lo + hi) // 2
            probe = before.copy()
            probe.extend(hashes[: mid - page.start])
            if prefix_good(mid, probe.root()):
                lo = mid
            else:
                hi = mid
        bad = hi - 1
        evidence = _check_leaf_against_log(
            client, cp, bad, page.leaves[bad - page.start], {"method": "prefix consistency proofs"}
        )
        return bad, _jsonable(evidence)
    return None, _jsonable({"tree_size": size, "signed_root": root, "second_pass_root": cr.root()})


# --------------------------------------------------------------------------
# Receipts
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Receipt:
    """A receipt as handed to a consumer or lender (the JSON object)."""

    event_id: str
    leaf_hash: bytes
    occurred_at: str
    max_merge_delay_seconds: int
    note: bytes
    raw: dict[str, Any] = field(compare=False, repr=False, default_factory=dict)
    source: str = ""


@dataclass(frozen=True)
class ReceiptStatement:
    """What the receipt note's signed body says."""

    origin: str
    event_id: str
    leaf_hash: bytes
    timestamp: int
    max_merge_delay: int

    @property
    def deadline(self) -> int:
        """The entry must be in every checkpoint signed after this time."""
        return self.timestamp + self.max_merge_delay


@dataclass(frozen=True)
class ReceiptResult:
    event_id: str
    status: str  # "included" or "pending"
    leaf_index: int | None
    deadline: int
    source: str = ""


def _find_receipt_object(obj: Any) -> list[dict[str, Any]]:
    if isinstance(obj, dict):
        if isinstance(obj.get("receipt"), dict):
            return [obj["receipt"]]
        if "note" in obj and "event_id" in obj:
            return [obj]
        found: list[dict[str, Any]] = []
        for v in obj.values():
            found.extend(_find_receipt_object(v))
        return found
    if isinstance(obj, list):
        found = []
        for v in obj:
            found.extend(_find_receipt_object(v))
        return found
    return []


def parse_receipt(obj: Any, source: str = "") -> Receipt:
    """A receipt from its JSON: the receipt object itself, or any answer containing ``"receipt"``.

    Raises :class:`UsageError` if there is no (single) receipt object of the
    documented shape; whether it is *genuine* is :func:`verify_receipt`'s job.
    """
    where = source or "receipt"
    found = _find_receipt_object(obj)
    if not found:
        raise UsageError(f"{where}: no receipt found (expected a 'receipt' object with a signed 'note')")
    if len(found) > 1:
        raise UsageError(f"{where}: contains {len(found)} receipts; pass one receipt per file")
    r = found[0]
    try:
        event_id, lh, occurred, mmd, note = (
            r["event_id"], r["leaf_hash"], r["occurred_at"], r["max_merge_delay_seconds"], r["note"]
        )
    except KeyError as exc:
        raise UsageError(f"{where}: receipt lacks the field {exc.args[0]!r}") from None
    if not isinstance(event_id, str) or not isinstance(occurred, str) or not isinstance(note, str):
        raise UsageError(f"{where}: receipt fields event_id, occurred_at and note must be strings")
    if isinstance(mmd, bool) or not isinstance(mmd, int) or mmd < 0:
        raise UsageError(f"{where}: receipt max_merge_delay_seconds must be a non-negative integer")
    try:
        leaf = b64decode_strict(lh)
    except ValueError:
        raise UsageError(f"{where}: receipt leaf_hash is not standard padded base64") from None
    return Receipt(event_id, leaf, occurred, mmd, note.encode("utf-8"), dict(r), source)


def load_receipt_file(path: str | pathlib.Path) -> Receipt:
    """Read and parse a receipt file (:class:`UsageError` if unreadable or not a receipt)."""
    p = pathlib.Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read receipt file {p}: {exc.strerror or exc}") from None
    try:
        obj = json.loads(data)
    except ValueError:
        raise UsageError(f"receipt file {p} is not JSON") from None
    return parse_receipt(obj, str(p))


def parse_receipt_body(body: bytes) -> ReceiptStatement:
    """Parse the signed receipt text strictly; raises ValueError.

    Exactly five lines, each ending in a newline::

        <origin>/receipt
        <event_id>
        <base64 leaf hash>
        Timestamp: <unix seconds>
        Max-Merge-Delay: <seconds>
    """
    text = body.decode("utf-8")
    if not text.endswith("\n"):
        raise ValueError("receipt text must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) != 5:
        raise ValueError(f"receipt text must have 5 lines, got {len(lines)}")
    first, event_id, hash_line, ts_line, mmd_line = lines
    if not first.endswith(RECEIPT_SUFFIX) or len(first) == len(RECEIPT_SUFFIX):
        raise ValueError(f"first line {first!r} is not '<origin>{RECEIPT_SUFFIX}'")
    if not event_id or event_id != event_id.strip():
        raise ValueError("empty or padded event id")
    try:
        leaf = b64decode_strict(hash_line)
    except ValueError:
        raise ValueError("leaf hash line is not base64") from None
    if len(leaf) != HASH_SIZE or b64(leaf) != hash_line:
        raise ValueError("leaf hash line is not the canonical base64 of 32 bytes")

    def number(line: str, prefix: str) -> int:
        if not line.startswith(prefix):
            raise ValueError(f"expected a {prefix!r} line, got {line!r}")
        digits = line[len(prefix):]
        if not digits.isascii() or not digits.isdigit() or (len(digits) > 1 and digits[0] == "0") or len(digits) > 19:
            raise ValueError(f"invalid number in {line!r}")
        return int(digits)

    return ReceiptStatement(
        origin=first[: -len(RECEIPT_SUFFIX)],
        event_id=event_id,
        leaf_hash=leaf,
        timestamp=number(ts_line, "Timestamp: "),
        max_merge_delay=number(mmd_line, "Max-Merge-Delay: "),
    )


def verify_receipt(
    client: RegisterClient, verifier: NoteVerifier | KeyChain, cp: Checkpoint, receipt: Receipt, *, now: float
) -> ReceiptResult:
    """Check a receipt is genuine and its access is in the log (or still within the merge delay).

    With a key chain, a receipt by a retired key verifies if it was signed by the time that key handed over,
    give or take the merge delay the receipt states (the time server processes may take to pick up a new key).
    """
    label = f"receipt for event {receipt.event_id!r}"
    base = {"receipt": receipt.raw, "source": receipt.source}
    retired: Handover | None = None  # set when a retired key of the chain signed the receipt
    if isinstance(verifier, KeyChain):
        try:
            i = verifier.signer_of(receipt.note)
        except NoteError:
            i = len(verifier.keys) - 1
        retired = verifier.handovers[i] if i < len(verifier.handovers) else None
        verifier = verifier.keys[i]
    try:
        body = verifier.open(receipt.note)
    except NoteError as exc:
        raise VerificationError(
            f"{label} is not signed by the pinned log key (forged or altered)",
            {**base, "pinned_key": verifier.verifier_key(), "reason": str(exc)},
        ) from None
    try:
        st = parse_receipt_body(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise VerificationError(f"{label}: signed receipt text is malformed: {exc}", base) from None
    if st.origin != verifier.name:
        raise VerificationError(
            f"{label}: signed for log {st.origin!r}, not the pinned log {verifier.name!r}",
            {**base, "expected_origin": verifier.name, "actual_origin": st.origin},
        )
    if retired is not None and st.timestamp > retired.timestamp + st.max_merge_delay:
        raise VerificationError(
            f"{label} is signed by a retired log key after it handed over "
            f"(receipt {iso(st.timestamp)}, handover {iso(retired.timestamp)})",
            {**base, "key": verifier.verifier_key(), "handover_timestamp": retired.timestamp},
        )
    diffs = {}
    if receipt.event_id != st.event_id:
        diffs["event_id"] = {"json": receipt.event_id, "note": st.event_id}
    if receipt.leaf_hash != st.leaf_hash:
        diffs["leaf_hash"] = {"json": receipt.leaf_hash, "note": st.leaf_hash}
    if receipt.max_merge_delay_seconds != st.max_merge_delay:
        diffs["max_merge_delay_seconds"] = {"json": receipt.max_merge_delay_seconds, "note": st.max_merge_delay}
    if diffs:
        raise VerificationError(
            f"{label}: the receipt JSON disagrees with its signed note (" + ", ".join(diffs) + ")",
            {**base, "disagreements": diffs},
        )
    answer = client.inclusion_proof_by_hash(st.leaf_hash, cp.size) if cp.size > 0 else None
    if answer is None:
        if now > st.deadline:
            raise VerificationError(
                f"the operator dropped an access it signed a receipt for: event {st.event_id!r}, "
                f"signed {iso(st.timestamp)}, due in the log by {iso(st.deadline)}, "
                f"absent from the signed checkpoint of size {cp.size}",
                {
                    **base,
                    "event_id": st.event_id,
                    "leaf_hash": st.leaf_hash,
                    "receipt_timestamp": st.timestamp,
                    "max_merge_delay": st.max_merge_delay,
                    "deadline": st.deadline,
                    "now": int(now),
                    "checkpoint": _cp_evidence(cp),
                    # True: the two signed notes alone prove it (checkpoint signed after the deadline).
                    "provable_from_signed_notes_alone": cp.timestamp > st.deadline,
                },
            )
        return ReceiptResult(st.event_id, "pending", None, st.deadline, receipt.source)
    evidence = {
        **base,
        "leaf_hash": st.leaf_hash,
        "leaf_index": answer.leaf_index,
        "tree_size": cp.size,
        "signed_root": cp.root_hash,
        "inclusion_proof": list(answer.proof),
    }
    if answer.tree_size != cp.size or answer.leaf_hash != st.leaf_hash:
        raise VerificationError(
            f"{label}: the register answered an inclusion query for a different leaf or tree size",
            {**evidence, "answer_leaf_hash": answer.leaf_hash, "answer_tree_size": answer.tree_size},
        )
    try:
        verify_inclusion(st.leaf_hash, answer.leaf_index, cp.size, list(answer.proof), cp.root_hash)
    except ProofError as exc:
        raise VerificationError(
            f"{label}: inclusion proof does not verify against the signed root of size {cp.size}",
            {**evidence, "reason": str(exc)},
        ) from None
    return ReceiptResult(st.event_id, "included", answer.leaf_index, st.deadline, receipt.source)


# --------------------------------------------------------------------------
# The whole run
# --------------------------------------------------------------------------


@dataclass
class VerifyResult:
    """Everything one successful ``verify`` run established."""

    origin: str
    log_key: str
    checkpoint: Checkpoint
    checkpoint_note: bytes
    previous: Checkpoint | None = None
    consistency: ConsistencyResult | None = None
    leaves: list[LeafResult] = field(default_factory=list)
    receipts: list[ReceiptResult] = field(default_factory=list)
    full: FullResult | None = None
    key_newly_pinned: bool = False
    keys_followed: list[str] = field(default_factory=list)  # keys reached by a handover this run
    trust_on_first_use: bool = False
    state_dir: str = ""

    @property
    def pending_receipts(self) -> list[ReceiptResult]:
        return [r for r in self.receipts if r.status == "pending"]

    def summary(self) -> str:
        cp = self.checkpoint
        parts = [
            f"OK: audit log {self.origin} verified at size {cp.size}, root {b64(cp.root_hash)}, "
            f"signed {iso(cp.timestamp)} by the pinned key {self.log_key}."
        ]
        if self.key_newly_pinned:
            how = "trusted on first use" if self.trust_on_first_use else "given with --log-key"
            parts.append(f"Log key pinned now ({how}).")
        for key in self.keys_followed:
            parts.append(f"Log key handed over to {key}: the handover is signed by the key pinned before it, "
                         "and the new key is pinned now.")
        if self.previous is None:
            parts.append("First verified checkpoint: nothing earlier to compare with.")
        elif self.consistency and self.consistency.old_size == cp.size:
            parts.append(f"Unchanged since the last run (size {cp.size}, same root).")
        else:
            parts.append(
                f"Append-only since the last verified checkpoint: size {self.previous.size} -> {cp.size}, "
                "consistency proof verified."
            )
        if self.leaves:
            idx = ", ".join(str(lr.index) for lr in self.leaves)
            parts.append(f"Leaf {idx} fetched, hashed and proven included." if len(self.leaves) == 1
                         else f"Leaves {idx} fetched, hashed and proven included.")
        if self.full is not None:
            parts.append(
                f"Full audit: all {self.full.size} leaves re-hashed in {self.full.pages} page(s); "
                "the recomputed root equals the signed root."
            )
        for r in self.receipts:
            if r.status == "included":
                parts.append(f"Receipt {r.event_id}: included at leaf {r.leaf_index}.")
            else:
                parts.append(
                    f"Receipt {r.event_id}: PENDING, not in the log yet but still within the merge delay; "
                    f"it must be in the log by {iso(r.deadline)}: run again after that."
                )
        if self.state_dir:
            parts.append(f"Checkpoint stored in {self.state_dir}.")
        return " ".join(parts)


def _canonical_vkey(vkey: str) -> str:
    return parse_vkey(vkey).verifier_key()


def run_verify(
    client: RegisterClient,
    state: State,
    *,
    log_key: str | None = None,
    trust_on_first_use: bool = False,
    leaf_indices: Sequence[int] = (),
    receipts: Sequence[Receipt] = (),
    full: bool = False,
    page_size: int = MAX_LEAVES_PER_CALL,
    now: Callable[[], float] = time.time,
    warn: Callable[[str], None] | None = None,
) -> VerifyResult:
    """Run every requested check; commit the state dir only if all of them pass.

    Raises :class:`VerificationError`, :class:`UsageError`,
    :class:`~register_verifier.client.ClientError` or :class:`StateError`;
    in all those cases the state dir is left exactly as it was.
    """
    # 1. The pinned key.
    pinned = state.read_log_key()
    newly_pinned = False
    tofu = False
    if pinned is not None:
        try:
            verifier = NoteVerifier.from_vkey(pinned)
        except NoteError as exc:
            raise StateError(f"the pinned key in {state.path} is malformed: {exc}") from None
        known = {k.verifier_key() for k in chain_from_state(verifier, state.read_handovers()).keys}
        if log_key is not None and _canonical_vkey(log_key) not in known:  # the pinned key, or one it handed over from
            raise UsageError(
                f"--log-key differs from the key pinned in {state.path} ({verifier.verifier_key()}). "
                "The log key is never replaced silently: a new key is followed only through a handover signed "
                "by the pinned key; without one, confirm the new key out of band and start a new state dir"
            )
    elif log_key is not None:
        verifier = parse_vkey(log_key)
        newly_pinned = True
    elif trust_on_first_use:
        verifier = verifier_from_log_key(client.log_key())
        newly_pinned = tofu = True
        if warn:
            warn(
                "WARNING: TRUST ON FIRST USE. No log key was given, so the key the register itself serves "
                f"({verifier.verifier_key()}) will be pinned if this run passes. Everything verified from now on "
                "is only as good as this key: compare it with the key published out of band (gazette, "
                "regulator's site) before relying on these results."
            )
    else:
        raise UsageError(
            f"no log key pinned in {state.path} yet: pass --log-key VKEY (the register's published "
            "verifier key) or, knowingly, --trust-on-first-use"
        )

    chain = chain_from_state(verifier, state.read_handovers() if pinned is not None else [])
    previous_note = state.read_checkpoint()
    previous: Checkpoint | None = None
    if previous_note is not None:
        try:
            previous = open_checkpoint_in_chain(chain, previous_note)
        except VerificationError as exc:
            raise StateError(f"the stored checkpoint in {state.path} does not verify with the pinned key: {exc}") from None

    # 2. The latest checkpoint; signed by a key the pinned one handed over to only through signed handovers.
    response = client.checkpoint()
    followed: list[bytes] = []
    try:
        chain.signer_of(response.note)
    except NoteError:
        followed = follow_handovers(client, chain)
        if followed and warn:
            warn(f"The log key was handed over: now pinning {chain.current.verifier_key()} "
                 f"(signed handover from {verifier.verifier_key()}).")
    verifier = chain.current
    cp = verify_checkpoint_response(chain, response)

    # 3. Append-only.
    consistency = None
    if previous is not None:
        consistency = verify_append_only(client, previous, cp, old_note=previous_note or b"", new_note=response.note)

    # 4. Individual leaves.
    leaves = [verify_leaf(client, cp, i) for i in dict.fromkeys(leaf_indices)]

    # 6. Receipts.
    receipt_results = [verify_receipt(client, chain, cp, r, now=now()) for r in receipts]

    # 5. Full audit (last: the most expensive).
    full_result = verify_full(client, cp, page_size=page_size) if full else None

    # 7. Everything passed: commit.
    state.commit(
        log_key=verifier.verifier_key(),
        handovers=followed,
        checkpoint_note=response.note,
        history_entry={
            "time": iso(now()),
            "origin": cp.origin,
            "size": cp.size,
            "root": b64(cp.root_hash),
            "timestamp": cp.timestamp,
            "previous_size": previous.size if previous else None,
            "leaf_indices": [lr.index for lr in leaves],
            "full": full_result is not None,
            "receipts": [{"event_id": r.event_id, "status": r.status, "leaf_index": r.leaf_index}
                         for r in receipt_results],
            "handovers_followed": [Handover.parse_body(n[: n.rfind(b"\n\n") + 1]).new_key for n in followed],
        },
    )
    return VerifyResult(
        origin=cp.origin,
        log_key=verifier.verifier_key(),
        checkpoint=cp,
        checkpoint_note=response.note,
        previous=previous,
        consistency=consistency,
        leaves=leaves,
        receipts=receipt_results,
        full=full_result,
        key_newly_pinned=newly_pinned,
        keys_followed=[Handover.parse_body(n[: n.rfind(b"\n\n") + 1]).new_key for n in followed],
        trust_on_first_use=tofu,
        state_dir=str(state.path),
    )
