"""The operator's check of the log: recompute every leaf from its stored event, the tree from the leaves,
every stored subtree node, and every checkpoint's root and signature. Streaming: O(log n) memory for the
tree, one page of leaves at a time. Failures carry evidence (index, expected, actual).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass, field

from register.audit import hashing
from register_verifier.handover import KeyChain
from register_verifier.note import Checkpoint, NoteError, NoteVerifier
from register_verifier.tree import CompactRange


@dataclass(frozen=True)
class Problem:
    what: str
    leaf_index: int | None = None
    expected: str | None = None
    actual: str | None = None

    def __str__(self) -> str:
        parts = [self.what]
        if self.leaf_index is not None:
            parts.insert(0, f"leaf {self.leaf_index}:")
        if self.expected is not None:
            parts.append(f"expected {self.expected}")
        if self.actual is not None:
            parts.append(f"actual {self.actual}")
        return " ".join(parts)


@dataclass
class Report:
    leaves: int = 0
    checkpoints: int = 0
    nodes_checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _b64(h: bytes | None) -> str:
    return base64.b64encode(h).decode() if h is not None else "(none)"


@dataclass(frozen=True)
class LeafRecord:
    leaf_index: int
    stored_hash: bytes
    event_bytes: bytes | None  # the event re-encoded now; None if the event row is gone


def check_log(
    pages: Iterable[list[LeafRecord]],
    checkpoints: list[tuple[str, int, bytes]],  # (note text, size, root stored beside it)
    verifier: NoteVerifier | KeyChain,
    node_pages: Iterable[dict[tuple[int, int], bytes]] | None = None,
) -> Report:
    """Walk the leaves in order. `node_pages[i]` holds the stored nodes the i-th page of leaves completes."""
    report = Report()
    tree = CompactRange()
    by_size: dict[int, list[tuple[str, bytes]]] = {}
    for note, size, root in checkpoints:
        by_size.setdefault(size, []).append((note, root))

    def check_checkpoints_at(size: int) -> None:
        for note, stored_root in by_size.pop(size, []):
            report.checkpoints += 1
            try:
                cp = Checkpoint.parse_body(verifier.open(note.encode()))
            except NoteError as exc:
                report.problems.append(Problem(f"checkpoint at size {size} does not verify with the log key: {exc}"))
                continue
            if isinstance(verifier, KeyChain):
                until = verifier.until_size(verifier.signer_of(note.encode()))
                if until is not None and cp.size > until:
                    report.problems.append(Problem(f"checkpoint at size {size} is signed by a retired log key, "
                                                   f"which handed over at size {until}"))
                    continue
            computed = tree.root()
            if cp.size != size or cp.root_hash != stored_root:
                report.problems.append(Problem(f"checkpoint at size {size}: the signed note disagrees with its row"))
            if cp.root_hash != computed:
                report.problems.append(Problem(f"checkpoint at size {size}: root does not match the leaves",
                                               expected=_b64(cp.root_hash), actual=_b64(computed)))

    check_checkpoints_at(0)
    node_iter = iter(node_pages) if node_pages is not None else None
    for page in pages:
        stored_nodes = next(node_iter, {}) if node_iter is not None else {}
        for rec in page:
            if rec.leaf_index != tree.size:
                report.problems.append(Problem("leaf indexes are not dense", rec.leaf_index,
                                               expected=str(tree.size), actual=str(rec.leaf_index)))
                return report
            if rec.event_bytes is None:
                report.problems.append(Problem("its access event is missing", rec.leaf_index,
                                               expected=_b64(rec.stored_hash)))
            else:
                recomputed = hashing.leaf_hash(rec.event_bytes)
                if recomputed != rec.stored_hash:
                    report.problems.append(Problem("the stored event no longer encodes to the leaf the tree holds",
                                                   rec.leaf_index, expected=_b64(rec.stored_hash),
                                                   actual=_b64(recomputed)))
            for node_id, h in tree.append(rec.stored_hash):
                if node_id in stored_nodes:
                    report.nodes_checked += 1
                    if stored_nodes[node_id] != h:
                        report.problems.append(Problem(f"stored node {node_id} does not match the leaves",
                                                       rec.leaf_index, expected=_b64(h),
                                                       actual=_b64(stored_nodes[node_id])))
            report.leaves = tree.size
            check_checkpoints_at(tree.size)
    for size in sorted(by_size):
        report.problems.append(Problem(f"checkpoint at size {size} is beyond the end of the log ({tree.size} leaves)"))
    return report
