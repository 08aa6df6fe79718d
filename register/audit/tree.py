"""The audit log's Merkle tree as stored (complete-subtree nodes, appends, roots and proofs): the one
implementation is :mod:`register_verifier.tree`, installed from ./clients/register_verifier; this name stays
for callers."""

from __future__ import annotations

from register_verifier.tree import (
    CompactRange,
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

__all__ = [
    "NodeID", "NodeReader", "ProofPlan", "MemoryTree", "range_nodes", "inclusion_plan", "consistency_plan",
    "root", "inclusion_proof", "consistency_proof", "append_nodes", "CompactRange",
]
