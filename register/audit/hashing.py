"""RFC 9162 (Certificate Transparency 2.0) / RFC 6962 hashing of the audit log's Merkle tree.

Hashing (RFC 9162 section 2.1.1)::

    MTH({})       = SHA-256()
    MTH({d0})     = SHA-256(0x00 || d0)                      leaf_hash
    MTH(D[n])     = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))   node_hash
                    where k is the largest power of two smaller than n

Everything here is copied verbatim into
``clients/register_verifier/src/register_verifier/merkle.py``; a test keeps
the two copies identical.  Standard library only.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

__all__ = [
    "HASH_SIZE",
    "EMPTY_ROOT",
    "leaf_hash",
    "node_hash",
    "root_from_leaf_hashes",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


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
