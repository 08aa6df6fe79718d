"""RFC 9162 (Certificate Transparency 2.0) / RFC 6962 Merkle tree for the audit log, in three parts.

* :mod:`register.audit.hashing`: leaf and node hashes, the root over a list of leaf hashes;
* :mod:`register.audit.verification`: checking inclusion and consistency proofs (RFC 9162
  sections 2.1.3.2 and 2.1.4.2);
* :mod:`register_verifier.tree`: the stored tree of complete-subtree nodes, appending to it, and its
  roots and proofs.

All three are implemented once, in the regulator's verifier (``register_verifier.merkle`` and
``register_verifier.tree``, installed from ./clients/register_verifier). This module only gathers them under
one name for callers that use several of them.
"""

from __future__ import annotations

from register.audit.hashing import EMPTY_ROOT, HASH_SIZE, leaf_hash, node_hash, root_from_leaf_hashes
from register_verifier.tree import (
    MemoryTree,
    NodeID,
    NodeReader,
    ProofPlan,
    append_nodes,
    consistency_plan,
    consistency_proof,
    inclusion_plan,
    inclusion_proof,
    range_nodes,
    root,
)
from register.audit.verification import (
    MAX_TREE_SIZE,
    ProofError,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "HASH_SIZE",
    "EMPTY_ROOT",
    "MAX_TREE_SIZE",
    "ProofError",
    "NodeID",
    "NodeReader",
    "ProofPlan",
    "MemoryTree",
    "leaf_hash",
    "node_hash",
    "root_from_leaf_hashes",
    "range_nodes",
    "inclusion_plan",
    "consistency_plan",
    "root",
    "inclusion_proof",
    "consistency_proof",
    "append_nodes",
    "root_from_inclusion_proof",
    "verify_inclusion",
    "verify_consistency",
]
