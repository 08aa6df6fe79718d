"""RFC 9162 / RFC 6962 Merkle proof verification for the register's audit log.

The one implementation of the log's hashing and proof checks: the register
imports it from here (``register.audit`` re-exports it), and this package
imports nothing from the register.

    leaf_hash(d)     = SHA-256(0x00 || d)
    node_hash(l, r)  = SHA-256(0x01 || l || r)
    MTH({})          = SHA-256("")

:func:`verify_inclusion` and :func:`verify_consistency` transcribe RFC 9162
sections 2.1.3.2 and 2.1.4.2; both return None or raise :class:`ProofError`.
A proof only means something against a root taken from a checkpoint whose
signature you verified (see :mod:`register_verifier.note`).
"""

from __future__ import annotations

import hashlib
from typing import Sequence

__all__ = [
    "HASH_SIZE",
    "EMPTY_ROOT",
    "MAX_TREE_SIZE",
    "ProofError",
    "leaf_hash",
    "node_hash",
    "root_from_leaf_hashes",
    "root_from_inclusion_proof",
    "verify_inclusion",
    "verify_consistency",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
# RFC 9162 tree sizes and leaf indices are uint64.
MAX_TREE_SIZE = 2**64 - 1


class ProofError(ValueError):
    """A Merkle proof (or its parameters) did not verify."""


def leaf_hash(data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d)."""
    return hashlib.sha256(b"\x00" + bytes(data)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + bytes(left) + bytes(right)).digest()


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH over a complete list of leaf hashes (RFC 9162 section 2.1.1).

    Computed with a stack of perfect subtrees (a compact range) and a final
    right-to-left fold, which is equal to the recursive definition with
    k = largest power of two < n.
    """
    stack: list[tuple[int, bytes]] = []  # (level, hash), levels strictly decreasing
    for h in hashes:
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            raise ValueError(f"leaf hashes must be {HASH_SIZE}-byte bytes")
        level = 0
        while stack and stack[-1][0] == level:
            h = node_hash(stack.pop()[1], h)
            level += 1
        stack.append((level, h))
    if not stack:
        return EMPTY_ROOT
    acc = stack[-1][1]
    for _, h in reversed(stack[:-1]):
        acc = node_hash(h, acc)
    return acc


def _check_size(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProofError(f"{name} must be an int, got {type(value).__name__}")
    if not 0 <= value <= MAX_TREE_SIZE:
        raise ProofError(f"{name} {value} out of range [0, 2**64 - 1]")
    return value


def _check_hash(name: str, value: object) -> bytes:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise ProofError(f"{name} must be {HASH_SIZE} bytes")
    return value


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """Root hash implied by an inclusion proof (RFC 9162 section 2.1.3.2, steps 1-4).

    Raises :class:`ProofError` if the proof has the wrong shape for
    ``(index, size)``.  The returned root means nothing until it is compared
    with a trusted (signed) root for ``size``.
    """
    _check_hash("leaf hash", leaf_hash)
    index = _check_size("leaf index", index)
    size = _check_size("tree size", size)
    # 1. If leaf_index is greater than or equal to tree_size, fail.
    if index >= size:
        raise ProofError(f"leaf index {index} is not below tree size {size}")
    # 2. Set fn to leaf_index and sn to tree_size - 1.
    fn, sn = index, size - 1
    # 3. Set r to hash.
    r = leaf_hash
    # 4. For each value p in the inclusion_path array:
    for i, p in enumerate(proof):
        _check_hash(f"inclusion proof element {i}", p)
        # a. If sn is 0, stop the iteration and fail the proof verification.
        if sn == 0:
            raise ProofError(
                f"inclusion proof too long for leaf {index} in tree size {size}"
            )
        # b. If LSB(fn) is set, or if fn is equal to sn, then:
        if fn & 1 or fn == sn:
            # i. Set r to HASH(0x01 || p || r).
            r = node_hash(p, r)
            # ii. If LSB(fn) is not set, right-shift both fn and sn equally
            #     until either LSB(fn) is set or fn is 0.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            # Otherwise: i. Set r to HASH(0x01 || r || p).
            r = node_hash(r, p)
        # c. Finally, right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # 5. (first half) Compare sn to 0.
    if sn != 0:
        raise ProofError(
            f"inclusion proof too short for leaf {index} in tree size {size}"
        )
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree ``(size, root)``.

    RFC 9162 section 2.1.3.2.  Returns None on success, raises
    :class:`ProofError` otherwise.
    """
    _check_hash("root hash", root)
    calculated = root_from_inclusion_proof(leaf_hash, index, size, proof)
    # 5. (second half) Compare r against the root_hash.
    if calculated != root:
        raise ProofError(
            f"inclusion proof for leaf {index} does not lead to the root of tree size {size}"
        )


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that tree ``(size2, root2)`` is an append-only extension of ``(size1, root1)``.

    RFC 9162 section 2.1.4.2 for ``0 < size1 < size2``, plus the two trivial
    cases the RFC leaves out, both of which require an empty proof:

    * ``size1 == size2``: the roots must be equal;
    * ``size1 == 0``: ``root1`` must be the empty-tree hash SHA-256("")
      (the empty tree is a prefix of every tree).

    ``size1 > size2`` is always an error.  Raises :class:`ProofError`.
    """
    size1 = _check_size("size1", size1)
    size2 = _check_size("size2", size2)
    _check_hash("root1", root1)
    _check_hash("root2", root2)
    if size1 > size2:
        raise ProofError(f"size1 {size1} > size2 {size2}: a log never shrinks")
    if size1 == 0 or size1 == size2:
        if len(proof) != 0:
            raise ProofError("consistency proof must be empty when size1 is 0 or equals size2")
        if size1 == 0 and root1 != EMPTY_ROOT:
            raise ProofError("root1 of a size-0 tree must be SHA-256 of the empty string")
        if size1 == size2 and root1 != root2:
            raise ProofError(f"different root hashes for the same tree size {size1}")
        return

    # 0 < size1 < size2: RFC 9162 section 2.1.4.2.
    # 1. If consistency_path is an empty array, stop and fail.
    if len(proof) == 0:
        raise ProofError(f"empty consistency proof between sizes {size1} and {size2}")
    path = [_check_hash(f"consistency proof element {i}", c) for i, c in enumerate(proof)]
    # 2. If first is an exact power of 2, prepend first_hash to consistency_path.
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    # 3. Set fn to first - 1 and sn to second - 1.
    fn, sn = size1 - 1, size2 - 1
    # 4. If LSB(fn) is set, right-shift both fn and sn equally until LSB(fn) is not set.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5. Set both fr and sr to the first value in the consistency_path array.
    fr = sr = path[0]
    # 6. For each subsequent value c in the consistency_path array:
    for c in path[1:]:
        # a. If sn is 0, stop the iteration and fail the proof verification.
        if sn == 0:
            raise ProofError(
                f"consistency proof too long for sizes {size1} -> {size2}"
            )
        # b. If LSB(fn) is set, or if fn is equal to sn, then:
        if fn & 1 or fn == sn:
            # i. Set fr to HASH(0x01 || c || fr).  ii. Set sr to HASH(0x01 || c || sr).
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            # iii. If LSB(fn) is not set, right-shift both fn and sn equally
            #      until either LSB(fn) is set or fn is 0.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            # Otherwise: i. Set sr to HASH(0x01 || sr || c).
            sr = node_hash(sr, c)
        # c. Finally, right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # 7. Verify that fr equals first_hash, sr equals second_hash, and sn is 0.
    if sn != 0:
        raise ProofError(f"consistency proof too short for sizes {size1} -> {size2}")
    if fr != root1:
        raise ProofError(f"consistency proof does not reproduce root1 of size {size1}")
    if sr != root2:
        raise ProofError(f"consistency proof does not reproduce root2 of size {size2}")
