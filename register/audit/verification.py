"""Checking RFC 9162 inclusion and consistency proofs: the one implementation is the verifier's
(:mod:`register_verifier.merkle`); this name stays for callers."""

from __future__ import annotations

from register_verifier.merkle import (
    MAX_TREE_SIZE,
    ProofError,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

__all__ = ["MAX_TREE_SIZE", "ProofError", "root_from_inclusion_proof", "verify_inclusion", "verify_consistency"]
