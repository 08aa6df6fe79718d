"""The audit log's Merkle tree as stored: complete-subtree nodes, appends, roots and proofs read from them.

Storage model
-------------
A stored tree is a table of *complete* (perfect) subtree nodes keyed by
``(level, index)``: the node at level L, index i is the root of the perfect
subtree over leaves ``[i * 2**L, (i + 1) * 2**L)``.  Level 0 holds the leaf
hashes.  Once a node is complete its hash never changes, so the table is
append-only, and a node written for a tree of size n is still valid for every
larger tree.  Nodes on an incomplete right edge ("ephemeral" nodes) are never
stored: whenever a proof needs one it is recomputed from the complete nodes
that cover the same leaves.  This is how ``transparency-dev/merkle``'s
``proof`` package builds proofs (``proof.Inclusion``/``proof.Consistency``
return node IDs plus a "rehash" range, and ``Nodes.Rehash`` folds the range).

A storage layer implements :class:`NodeReader` (one batched ``get_nodes``
call per proof, O(log n) nodes) and persists what :func:`append_nodes`
returns when integrating a batch of leaves (O(batch + log n) work).

The register builds its tree with this module; the verifier itself only
checks proofs (:mod:`register_verifier.merkle`) and needs it only in tests.
It lives here so the tree, its proofs and their checks are written once.
Depends only on :mod:`register_verifier.merkle`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Protocol, Sequence

from .merkle import EMPTY_ROOT, HASH_SIZE, node_hash

__all__ = [
    "NodeID",
    "NodeReader",
    "ProofPlan",
    "MemoryTree",
    "range_nodes",
    "inclusion_plan",
    "consistency_plan",
    "root",
    "inclusion_proof",
    "consistency_proof",
    "append_nodes",
    "CompactRange",
]

NodeID = tuple[int, int]
"""``(level, index)``: the perfect subtree over leaves [index * 2**level, (index + 1) * 2**level)."""


class NodeReader(Protocol):
    """Read access to stored complete-subtree node hashes.

    ``get_nodes`` must return the hashes in the order of ``ids``.  It is only
    ever asked for complete nodes of a tree the caller says exists; a missing
    node means the storage is inconsistent and should raise (e.g. KeyError).
    """

    def get_nodes(self, ids: list[tuple[int, int]]) -> list[bytes]: ...


def _decompose(begin: int, end: int) -> tuple[int, int]:
    """Sizes of the perfect subtrees covering [begin, end) as (left, right) bit masks.

    Port of transparency-dev/merkle ``compact.Decompose``: bits of ``left``
    (LSB to MSB) are the left part of the cover, bits of ``right`` (MSB to
    LSB) the right part.
    """
    if begin == 0:
        return 0, end
    xbegin = begin - 1
    d = (xbegin ^ end).bit_length() - 1
    mask = (1 << d) - 1
    return ~xbegin & mask, end & mask


def range_nodes(begin: int, end: int) -> list[NodeID]:
    """IDs of the minimal set of perfect subtrees covering leaves [begin, end), left to right.

    For ``begin == 0`` these are the subtrees of the tree of size ``end``
    along its right edge, in decreasing level order (the "compact range").
    """
    if isinstance(begin, bool) or isinstance(end, bool) or not (0 <= begin <= end):
        raise ValueError(f"invalid leaf range [{begin}, {end})")
    left, right = _decompose(begin, end)
    ids: list[NodeID] = []
    pos = begin
    while left:  # left border, increasing levels
        level = (left & -left).bit_length() - 1
        ids.append((level, pos >> level))
        pos += 1 << level
        left ^= 1 << level
    while right:  # right border, decreasing levels
        level = right.bit_length() - 1
        ids.append((level, pos >> level))
        pos += 1 << level
        right ^= 1 << level
    return ids


@dataclass(frozen=True)
class ProofPlan:
    """Which stored nodes make up a proof, and how to fold them into it.

    ``ids[begin:end]`` (if non-empty) are the complete nodes that cover an
    ephemeral node on the tree's incomplete right edge, ordered from the
    lowest level up; :meth:`rehash` folds them into that one hash.  Mirrors
    ``proof.Nodes`` in transparency-dev/merkle.
    """

    ids: tuple[NodeID, ...]
    begin: int = 0
    end: int = 0

    def rehash(self, hashes: Sequence[bytes]) -> list[bytes]:
        """Turn the hashes of :attr:`ids` (same order) into the proof."""
        if len(hashes) != len(self.ids):
            raise ValueError(f"got {len(hashes)} hashes for {len(self.ids)} node ids")
        out: list[bytes] = []
        i = 0
        while i < len(hashes):
            h = hashes[i]
            if self.begin <= i < self.end:
                i += 1
                while i < self.end:
                    h = node_hash(hashes[i], h)
                    i += 1
                i -= 1
            out.append(h)
            i += 1
        return out

    def _skip_first(self) -> "ProofPlan":
        if self.begin < self.end:
            return ProofPlan(self.ids[1:], self.begin - 1, self.end - 1)
        return ProofPlan(self.ids[1:])


def _plan_nodes(index: int, level: int, size: int) -> ProofPlan:
    """Node IDs proving that node (level, index) is in the tree of ``size`` leaves.

    The first ID is the node itself.  Port of ``nodes()`` in
    transparency-dev/merkle proof/proof.go: the path from (level, index) up
    to the "fork" (where it leaves the path to the tree's right edge) is
    given by siblings; the fork's right sibling is ephemeral and covered by
    the complete nodes of [fork_end, size); the rest by those of [0, fork_begin).
    """
    inner = (index ^ (size >> level)).bit_length() - 1
    fork_level, fork_index = level + inner, index >> inner
    fork_begin, fork_end = fork_index << fork_level, (fork_index + 1) << fork_level

    ids: list[NodeID] = [(level, index)]
    node_level, node_index = level, index
    while node_level < fork_level:
        ids.append((node_level, node_index ^ 1))
        node_level, node_index = node_level + 1, node_index >> 1
    begin = len(ids)
    ids.extend(reversed(range_nodes(fork_end, size)))  # lowest level first, for rehash
    end = len(ids)
    ids.extend(reversed(range_nodes(0, fork_begin)))  # increasing levels
    if end - begin < 2:  # zero or one node: nothing to rehash
        begin = end = 0
    return ProofPlan(tuple(ids), begin, end)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def inclusion_plan(index: int, size: int) -> ProofPlan:
    """Nodes needed for the inclusion proof of leaf ``index`` in the tree of ``size`` leaves."""
    if not (_is_int(index) and _is_int(size)) or not 0 <= index < size:
        raise ValueError(f"leaf index {index} out of range for tree size {size}")
    return _plan_nodes(index, 0, size)._skip_first()


def consistency_plan(size1: int, size2: int) -> ProofPlan:
    """Nodes needed for the consistency proof from tree size ``size1`` to ``size2``.

    Empty when ``size1`` is 0 or equal to ``size2`` (see :func:`verify_consistency`).
    """
    if not (_is_int(size1) and _is_int(size2)) or not 0 <= size1 <= size2:
        raise ValueError(f"invalid consistency proof sizes {size1} -> {size2}")
    if size1 == 0 or size1 == size2:
        return ProofPlan(())
    # The biggest perfect subtree ending at size1; its inclusion path in size2,
    # preceded by the subtree itself unless it is the whole size1 tree (which
    # the verifier already has as root1).
    level = (size1 & -size1).bit_length() - 1
    plan = _plan_nodes((size1 - 1) >> level, level, size2)
    if size1 & (size1 - 1) == 0:
        plan = plan._skip_first()
    return plan


def _fetch(reader: NodeReader, ids: Sequence[NodeID]) -> list[bytes]:
    if not ids:
        return []
    hashes = list(reader.get_nodes(list(ids)))
    if len(hashes) != len(ids):
        raise ValueError(f"node reader returned {len(hashes)} hashes for {len(ids)} ids")
    for node_id, h in zip(ids, hashes):
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            raise ValueError(f"node reader returned a malformed hash for node {node_id}")
    return hashes


def root(reader: NodeReader, size: int) -> bytes:
    """Root hash of the tree of ``size`` leaves, from O(log size) stored nodes."""
    if not _is_int(size) or size < 0:
        raise ValueError(f"invalid tree size {size}")
    if size == 0:
        return EMPTY_ROOT
    hashes = _fetch(reader, range_nodes(0, size))
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def inclusion_proof(reader: NodeReader, index: int, size: int) -> list[bytes]:
    """RFC 9162 inclusion proof (audit path) for leaf ``index`` in the tree of ``size`` leaves."""
    plan = inclusion_plan(index, size)
    return plan.rehash(_fetch(reader, plan.ids))


def consistency_proof(reader: NodeReader, size1: int, size2: int) -> list[bytes]:
    """RFC 9162 consistency proof between tree sizes ``size1 <= size2``.

    ``[]`` when ``size1 == size2`` or ``size1 == 0``.  ``size1 > size2`` raises ValueError.
    """
    plan = consistency_plan(size1, size2)
    return plan.rehash(_fetch(reader, plan.ids))


def append_nodes(
    size_before: int, new_leaf_hashes: Iterable[bytes], reader: NodeReader
) -> list[tuple[NodeID, bytes]]:
    """The complete nodes created by appending ``new_leaf_hashes`` to a tree of ``size_before`` leaves.

    Returns ``[((level, index), hash), ...]`` in creation order: every new
    leaf (level 0) followed by each parent it completes.  These are exactly
    the rows a writer must persist; nothing stored before changes.  Reads
    the O(log n) nodes of the existing compact range in one ``get_nodes``
    call (none if the batch is empty or the tree was empty).
    """
    if not _is_int(size_before) or size_before < 0:
        raise ValueError(f"invalid tree size {size_before}")
    leaves = list(new_leaf_hashes)
    for h in leaves:
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            raise ValueError(f"leaf hashes must be {HASH_SIZE}-byte bytes")
    if not leaves:
        return []
    ids = range_nodes(0, size_before)
    stack = [(lvl, idx, h) for (lvl, idx), h in zip(ids, _fetch(reader, ids))]
    out: list[tuple[NodeID, bytes]] = []
    pos = size_before
    for h in leaves:
        level, index = 0, pos
        out.append(((0, pos), h))
        while stack and stack[-1][0] == level:
            h = node_hash(stack.pop()[2], h)
            level, index = level + 1, index >> 1
            out.append(((level, index), h))
        stack.append((level, index, h))
        pos += 1
    return out


class MemoryTree:
    """In-memory tree storing every complete node; a :class:`NodeReader`.

    Built leaf by leaf with its own (independent) bookkeeping, so tests can
    cross-check :func:`append_nodes` against it.
    """

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = []  # _levels[L][i] = node (L, i)
        self.extend(leaf_hashes)

    @property
    def size(self) -> int:
        return len(self._levels[0]) if self._levels else 0

    def append(self, leaf_hash: bytes) -> int:
        """Append one leaf hash; returns its index."""
        if not isinstance(leaf_hash, bytes) or len(leaf_hash) != HASH_SIZE:
            raise ValueError(f"leaf hashes must be {HASH_SIZE}-byte bytes")
        index = self.size
        level, h = 0, leaf_hash
        while True:
            if level == len(self._levels):
                self._levels.append([])
            row = self._levels[level]
            row.append(h)
            if len(row) % 2:
                break
            h = node_hash(row[-2], row[-1])
            level += 1
        return index

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        for h in leaf_hashes:
            self.append(h)

    def get_nodes(self, ids: list[tuple[int, int]]) -> list[bytes]:
        out = []
        for level, index in ids:
            if not (0 <= level < len(self._levels) and 0 <= index < len(self._levels[level])):
                raise KeyError(f"node {(level, index)} is not stored (tree size {self.size})")
            out.append(self._levels[level][index])
        return out

    def nodes(self) -> dict[NodeID, bytes]:
        """Every stored node, as a storage layer would hold them."""
        return {
            (level, index): h
            for level, row in enumerate(self._levels)
            for index, h in enumerate(row)
        }

    def _size_arg(self, size: int | None) -> int:
        if size is None:
            return self.size
        if not _is_int(size) or not 0 <= size <= self.size:
            raise ValueError(f"tree size {size} not available (stored size {self.size})")
        return size

    def root(self, size: int | None = None) -> bytes:
        return root(self, self._size_arg(size))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(self, index, self._size_arg(size))

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        return consistency_proof(self, size1, self._size_arg(size2))


class CompactRange:
    """Streaming RFC 9162 root over leaf hashes appended in order.

    Keeps only the roots of the perfect subtrees covering ``[0, size)``: at most ``log2(size) + 1`` hashes,
    whatever the size.  ``root()`` equals :func:`register_verifier.merkle.root_from_leaf_hashes` of everything
    appended so far; ``append`` returns the complete nodes ``((level, index), hash)`` the new leaf finishes,
    the leaf itself first (what a stored tree holds, so a checker can compare them).
    """

    __slots__ = ("size", "_stack")

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []  # (height, hash), heights strictly decreasing

    def append(self, h: bytes) -> list[tuple[NodeID, bytes]]:
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            raise ValueError(f"leaf hashes must be {HASH_SIZE}-byte bytes")
        made = [((0, self.size), h)]
        height, index = 0, self.size
        while self._stack and self._stack[-1][0] == height:
            h = node_hash(self._stack.pop()[1], h)
            height, index = height + 1, index >> 1
            made.append(((height, index), h))
        self._stack.append((height, h))
        self.size += 1
        return made

    def extend(self, hashes: Iterable[bytes]) -> None:
        for h in hashes:
            self.append(h)

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        acc = self._stack[-1][1]
        for _, h in reversed(self._stack[:-1]):
            acc = node_hash(h, acc)
        return acc

    def copy(self) -> "CompactRange":
        other = CompactRange()
        other.size = self.size
        other._stack = list(self._stack)
        return other

    def __len__(self) -> int:
        """Number of hashes held (not the number of leaves)."""
        return len(self._stack)
