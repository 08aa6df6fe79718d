"""RFC 9162 / RFC 6962 hashing of the audit log's Merkle tree: the one implementation is the verifier's
(:mod:`register_verifier.merkle`, installed from ./clients/register_verifier); this name stays for callers."""

from __future__ import annotations

from register_verifier.merkle import EMPTY_ROOT, HASH_SIZE, leaf_hash, node_hash, root_from_leaf_hashes

__all__ = ["HASH_SIZE", "EMPTY_ROOT", "leaf_hash", "node_hash", "root_from_leaf_hashes"]
