"""Tests for the audit log's Merkle tree: register.audit.hashing, .verification and .tree (RFC 9162 / RFC 6962)."""

from __future__ import annotations

import ast
import importlib.util
import pathlib
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from register.audit import hashing, verification
from register_verifier import tree
from register.audit.hashing import EMPTY_ROOT, leaf_hash, node_hash, root_from_leaf_hashes
from register_verifier.tree import (
    MemoryTree,
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
    ProofError,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

REPO = pathlib.Path(__file__).resolve().parents[2]
CLIENT_MERKLE = REPO / "clients/register_verifier/src/register_verifier/merkle.py"

h = bytes.fromhex

# ---------------------------------------------------------------------------
# Published RFC 6962 test vectors.
#
# Leaves, roots, paths and proofs: google/certificate-transparency,
# cpp/merkletree/merkle_tree_test.cc (kInputs, kSHA256Roots, kSHA256Paths,
# kSHA256Proofs), repeated in transparency-dev/merkle proof/verify_test.go
# (inclusionProofs, consistencyProofs, roots, leaves; that file adds the
# 6 -> 7 consistency proof) and its testdata/{inclusion,consistency}/*/happy-path.json.
# Those files number leaves from 1 ("leaf 1" is index 0); below, indices are 0-based.
# ---------------------------------------------------------------------------

CT_LEAVES = [
    h(""),
    h("00"),
    h("10"),
    h("2021"),
    h("3031"),
    h("40414243"),
    h("5051525354555657"),
    h("606162636465666768696a6b6c6d6e6f"),
]

CT_ROOTS = {  # tree size -> root
    0: h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    1: h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    2: h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    3: h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    4: h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    5: h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    6: h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    7: h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    8: h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
}

CT_INCLUSION = [  # (leaf index, tree size, audit path)
    (0, 1, []),
    (
        0,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (2, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        1,
        5,
        [
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]

CT_CONSISTENCY = [  # (size1, size2, proof)
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

# From transparency-dev/merkle proof/verify_test.go.
SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")


def ct_tree() -> MemoryTree:
    return MemoryTree(leaf_hash(d) for d in CT_LEAVES)


def corrupt_inclusion(index, size, proof, root_, leaf):
    """Probes that must all fail: transparency-dev/merkle verify_test.go corruptInclusionProof."""
    probes = [
        (index - 1, size, root_, leaf, proof, "index - 1"),
        (index + 1, size, root_, leaf, proof, "index + 1"),
        (index ^ 2, size, root_, leaf, proof, "index ^ 2"),
        (index, size * 2, root_, leaf, proof, "size * 2"),
        (index, size // 2, root_, leaf, proof, "size / 2"),
        (index, size, root_, leaf_hash(b"WrongLeaf"), proof, "wrong leaf"),
        (index, size, EMPTY_ROOT, leaf, proof, "empty root"),
        (index, size, SOME_HASH, leaf, proof, "random root"),
        (index, size, root_, leaf, proof + [b""], "trailing garbage"),
        (index, size, root_, leaf, proof + [root_], "trailing root"),
        (index, size, root_, leaf, [b""] + proof, "preceding garbage"),
        (index, size, root_, leaf, [root_] + proof, "preceding root"),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bytes([wrong[i][0] ^ 8]) + wrong[i][1:]
        probes.append((index, size, root_, leaf, wrong, f"modified proof[{i}] bit 3"))
    if proof:
        probes.append((index, size, root_, leaf, proof[:-1], "removed component"))
    if len(proof) > 1:
        probes.append((index, size, root_, leaf, [proof[0], SOME_HASH] + proof[1:], "inserted component"))
    return probes


def corrupt_consistency(size1, size2, root1, root2, proof):
    """Probes that must all fail: transparency-dev/merkle verify_test.go corruptConsistencyProof."""
    probes = [
        (size1 - 1, size2, root1, root2, proof, "size1 - 1"),
        (size1 + 1, size2, root1, root2, proof, "size1 + 1"),
        (size1 ^ 2, size2, root1, root2, proof, "size1 ^ 2"),
        (size1, size2 * 2, root1, root2, proof, "size2 * 2"),
        (size1, size2 // 2, root1, root2, proof, "size2 / 2"),
        (size1, size2, leaf_hash(b"WrongRoot"), root2, proof, "wrong root1"),
        (size1, size2, root1, leaf_hash(b"WrongRoot"), proof, "wrong root2"),
        (size1, size2, root2, root1, proof, "swapped roots"),
        (size1, size2, root1, root2, [], "empty proof"),
        (size1, size2, root1, root2, proof + [b""], "trailing garbage"),
        (size1, size2, root1, root2, proof + [root1], "trailing root1"),
        (size1, size2, root1, root2, proof + [root2], "trailing root2"),
        (size1, size2, root1, root2, [b""] + proof, "preceding garbage"),
        (size1, size2, root1, root2, [root1] + proof, "preceding root1"),
        (size1, size2, root1, root2, [root2] + proof, "preceding root2"),
        (size1, size2, root1, root2, [proof[0]] + proof, "preceding proof[0]"),
        (size1, size2, root1, root2, proof[:-1], "truncated proof"),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bytes([wrong[i][0] ^ 16]) + wrong[i][1:]
        probes.append((size1, size2, root1, root2, wrong, f"modified proof[{i}] bit 4"))
    return probes


# ---------------------------------------------------------------------------
# Naive reference implementation, straight from the RFC 9162 section 2.1
# definitions (MTH, PATH, SUBPROOF), for cross-checking.
# ---------------------------------------------------------------------------


def _k(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(hashes):
    if not hashes:
        return EMPTY_ROOT
    if len(hashes) == 1:
        return hashes[0]
    k = _k(len(hashes))
    return node_hash(ref_mth(hashes[:k]), ref_mth(hashes[k:]))


def ref_path(m, hashes):
    n = len(hashes)
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return ref_path(m, hashes[:k]) + [ref_mth(hashes[k:])]
    return ref_path(m - k, hashes[k:]) + [ref_mth(hashes[:k])]


def ref_subproof(m, hashes, b):
    n = len(hashes)
    if m == n:
        return [] if b else [ref_mth(hashes)]
    k = _k(n)
    if m <= k:
        return ref_subproof(m, hashes[:k], b) + [ref_mth(hashes[k:])]
    return ref_subproof(m - k, hashes[k:], False) + [ref_mth(hashes[:k])]


def distinct_leaves(n, salt=b""):
    return [leaf_hash(salt + i.to_bytes(4, "big")) for i in range(n)]


class RecordingReader:
    """A NodeReader that logs calls and refuses nodes that are not complete in ``size``."""

    def __init__(self, tree: MemoryTree, size: int):
        self.tree, self.size, self.calls = tree, size, []

    def get_nodes(self, ids):
        self.calls.append(list(ids))
        for level, index in ids:
            assert (index + 1) << level <= self.size, f"asked for incomplete node {(level, index)}"
        return self.tree.get_nodes(ids)


class DictStore:
    """A storage layer keyed by (level, index), fed only by append_nodes."""

    def __init__(self):
        self.nodes, self.reads = {}, []

    def get_nodes(self, ids):
        self.reads.append(list(ids))
        return [self.nodes[i] for i in ids]


# ---------------------------------------------------------------------------


class TestHashing:
    # transparency-dev/merkle rfc6962/rfc6962_test.go
    def test_empty_tree_hash_is_sha256_of_nothing(self):
        assert EMPTY_ROOT == h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")

    def test_empty_leaf_hash(self):
        assert leaf_hash(b"") == h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")

    def test_leaf_hash(self):
        assert leaf_hash(b"L123456") == h("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56")

    def test_node_hash(self):
        assert node_hash(b"N123", b"N456") == h(
            "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
        )

    def test_leaf_and_node_hashes_are_domain_separated(self):
        a, b = leaf_hash(b"Hello"), leaf_hash(b"World")
        assert node_hash(a, b) != leaf_hash(a + b)
        assert node_hash(a, b) != node_hash(b, a)


class TestRFC6962Roots:
    @pytest.mark.parametrize("size", range(0, 9))
    def test_root_from_leaf_hashes(self, size):
        hashes = [leaf_hash(d) for d in CT_LEAVES[:size]]
        assert root_from_leaf_hashes(hashes) == CT_ROOTS[size]

    @pytest.mark.parametrize("size", range(0, 9))
    def test_root_from_stored_nodes_at_every_historical_size(self, size):
        assert ct_tree().root(size) == CT_ROOTS[size]

    def test_root_rejects_malformed_leaf_hash(self):
        with pytest.raises(ValueError):
            root_from_leaf_hashes([b"short"])


class TestRFC6962InclusionVectors:
    @pytest.mark.parametrize("index,size,path", CT_INCLUSION)
    def test_generated_proof_matches_vector(self, index, size, path):
        assert ct_tree().inclusion_proof(index, size) == path

    @pytest.mark.parametrize("index,size,path", CT_INCLUSION)
    def test_vector_verifies(self, index, size, path):
        leaf = leaf_hash(CT_LEAVES[index])
        assert root_from_inclusion_proof(leaf, index, size, path) == CT_ROOTS[size]
        verify_inclusion(leaf, index, size, path, CT_ROOTS[size])

    @pytest.mark.parametrize("index,size,path", CT_INCLUSION)
    def test_corrupted_vector_fails(self, index, size, path):
        leaf = leaf_hash(CT_LEAVES[index])
        for i, s, r, lf, p, desc in corrupt_inclusion(index, size, path, CT_ROOTS[size], leaf):
            with pytest.raises(ProofError):
                verify_inclusion(lf, i, s, p, r)
                pytest.fail(f"accepted corrupted proof: {desc}")


class TestRFC6962ConsistencyVectors:
    @pytest.mark.parametrize("size1,size2,proof", CT_CONSISTENCY)
    def test_generated_proof_matches_vector(self, size1, size2, proof):
        assert ct_tree().consistency_proof(size1, size2) == proof

    @pytest.mark.parametrize("size1,size2,proof", CT_CONSISTENCY)
    def test_vector_verifies(self, size1, size2, proof):
        verify_consistency(size1, size2, proof, CT_ROOTS[size1], CT_ROOTS[size2])

    @pytest.mark.parametrize("size1,size2,proof", [v for v in CT_CONSISTENCY if v[2]])
    def test_corrupted_vector_fails(self, size1, size2, proof):
        for s1, s2, r1, r2, p, desc in corrupt_consistency(
            size1, size2, CT_ROOTS[size1], CT_ROOTS[size2], proof
        ):
            with pytest.raises(ProofError):
                verify_consistency(s1, s2, p, r1, r2)
                pytest.fail(f"accepted corrupted proof: {desc}")


class TestProofNodePlans:
    """Node IDs per transparency-dev/merkle proof/proof_test.go (TestInclusion, TestConsistency).

    ``(ids, begin, end)``: ids[begin:end] are rehashed into one ephemeral node.
    """

    INCLUSION = [  # (size, index, ids, begin, end)
        (1, 0, [], 0, 0),
        (2, 0, [(0, 1)], 0, 0),
        (2, 1, [(0, 0)], 0, 0),
        (3, 1, [(0, 0), (0, 2)], 0, 0),
        (7, 0, [(0, 1), (1, 1), (0, 6), (1, 2)], 2, 4),
        (7, 1, [(0, 0), (1, 1), (0, 6), (1, 2)], 2, 4),
        (7, 2, [(0, 3), (1, 0), (0, 6), (1, 2)], 2, 4),
        (7, 3, [(0, 2), (1, 0), (0, 6), (1, 2)], 2, 4),
        (7, 4, [(0, 5), (0, 6), (2, 0)], 0, 0),
        (7, 5, [(0, 4), (0, 6), (2, 0)], 0, 0),
        (7, 6, [(1, 2), (2, 0)], 0, 0),
        (4, 2, [(0, 3), (1, 0)], 0, 0),
        (5, 3, [(0, 2), (1, 0), (0, 4)], 0, 0),
        (6, 3, [(0, 2), (1, 0), (1, 2)], 0, 0),
        (6, 4, [(0, 5), (2, 0)], 0, 0),
        (15, 10, [(0, 11), (1, 4), (0, 14), (1, 6), (3, 0)], 2, 4),
        (31, 24, [(0, 25), (1, 13), (0, 30), (1, 14), (3, 2), (4, 0)], 2, 4),
        (95, 81, [(0, 80), (1, 41), (2, 21), (0, 94), (1, 46), (2, 22), (4, 4), (6, 0)], 3, 6),
    ]

    CONSISTENCY = [  # (size1, size2, ids, begin, end)
        (1, 2, [(0, 1)], 0, 0),
        (1, 4, [(0, 1), (1, 1)], 0, 0),
        (1, 6, [(0, 1), (1, 1), (1, 2)], 0, 0),
        (2, 3, [(0, 2)], 0, 0),
        (2, 8, [(1, 1), (2, 1)], 0, 0),
        (3, 7, [(0, 2), (0, 3), (1, 0), (0, 6), (1, 2)], 3, 5),
        (4, 7, [(0, 6), (1, 2)], 0, 2),
        (5, 7, [(0, 4), (0, 5), (0, 6), (2, 0)], 0, 0),
        (6, 7, [(1, 2), (0, 6), (2, 0)], 0, 0),
        (7, 8, [(0, 6), (0, 7), (1, 2), (2, 0)], 0, 0),
        (1, 1, [], 0, 0),
        (2, 2, [], 0, 0),
        (3, 3, [], 0, 0),
        (4, 4, [], 0, 0),
        (5, 5, [], 0, 0),
        (7, 7, [], 0, 0),
        (8, 8, [], 0, 0),
        (2, 4, [(1, 1)], 0, 0),
        (3, 5, [(0, 2), (0, 3), (1, 0), (0, 4)], 0, 0),
        (3, 6, [(0, 2), (0, 3), (1, 0), (1, 2)], 0, 0),
        (4, 6, [(1, 2)], 0, 0),
        (1, 7, [(0, 1), (1, 1), (0, 6), (1, 2)], 2, 4),
        (10, 15, [(1, 4), (1, 5), (0, 14), (1, 6), (3, 0)], 2, 4),
        (24, 31, [(3, 2), (0, 30), (1, 14), (2, 6), (4, 0)], 1, 4),
        (81, 95, [(0, 80), (0, 81), (1, 41), (2, 21), (0, 94), (1, 46), (2, 22), (4, 4), (6, 0)], 4, 7),
    ]

    @pytest.mark.parametrize("size,index,ids,begin,end", INCLUSION)
    def test_inclusion_plan(self, size, index, ids, begin, end):
        assert inclusion_plan(index, size) == ProofPlan(tuple(ids), begin, end)

    @pytest.mark.parametrize("size1,size2,ids,begin,end", CONSISTENCY)
    def test_consistency_plan(self, size1, size2, ids, begin, end):
        assert consistency_plan(size1, size2) == ProofPlan(tuple(ids), begin, end)

    def test_rehash_folds_the_ephemeral_range(self):
        # transparency-dev/merkle proof_test.go TestRehash "rehash" and "rehash-at-the-end".
        hs = [leaf_hash(f"Hash {i}".encode()) for i in range(1, 6)]
        assert inclusion_plan(9, 15).rehash(hs) == [hs[0], hs[1], node_hash(hs[3], hs[2]), hs[4]]
        assert inclusion_plan(2, 7).rehash(hs[:4]) == [hs[0], hs[1], node_hash(hs[3], hs[2])]
        assert inclusion_plan(3, 8).rehash(hs[:3]) == hs[:3]

    def test_range_nodes(self):
        # compact.Decompose example: [0b110, 0b11101) -> sizes 2, 8; 8, 4, 1.
        assert range_nodes(6, 29) == [(1, 3), (3, 1), (3, 2), (2, 6), (0, 28)]
        assert range_nodes(0, 0) == []
        assert range_nodes(0, 7) == [(2, 0), (1, 2), (0, 6)]


class TestVerifyInclusionEdgeCases:
    def test_single_leaf_tree_has_empty_proof(self):
        lh = leaf_hash(b"data")
        verify_inclusion(lh, 0, 1, [], lh)

    @pytest.mark.parametrize("index,size", [(0, 0), (1, 0), (1, 1), (2, 1), (7, 7)])
    def test_index_not_below_size_fails(self, index, size):
        with pytest.raises(ProofError, match="not below tree size"):
            verify_inclusion(SOME_HASH, index, size, [], SOME_HASH)

    @pytest.mark.parametrize("bad", [-1, 2**64, True, 1.0, "1", None])
    def test_bad_index_or_size_type_fails(self, bad):
        with pytest.raises(ProofError):
            verify_inclusion(SOME_HASH, bad, 4, [], SOME_HASH)
        with pytest.raises(ProofError):
            verify_inclusion(SOME_HASH, 0, bad, [], SOME_HASH)

    def test_wrong_length_hashes_fail(self):
        lh = leaf_hash(b"data")
        with pytest.raises(ProofError):
            verify_inclusion(b"", 0, 1, [], lh)
        with pytest.raises(ProofError):
            verify_inclusion(lh, 0, 1, [], b"")
        with pytest.raises(ProofError):
            verify_inclusion(lh, 0, 2, [lh[:31]], lh)
        with pytest.raises(ProofError):
            verify_inclusion(lh, 0, 2, ["not bytes"], lh)

    def test_error_is_a_value_error(self):
        assert issubclass(ProofError, ValueError)


class TestVerifyConsistencyEdgeCases:
    R1, R2 = leaf_hash(b"don't care 1"), leaf_hash(b"don't care 2")

    def test_equal_sizes_equal_roots_empty_proof(self):
        verify_consistency(5, 5, [], self.R1, self.R1)

    def test_equal_sizes_different_roots_fails(self):
        with pytest.raises(ProofError, match="different root"):
            verify_consistency(1, 1, [], self.R1, self.R2)

    def test_equal_sizes_with_nonempty_proof_fails(self):
        with pytest.raises(ProofError):
            verify_consistency(1, 1, [EMPTY_ROOT], EMPTY_ROOT, EMPTY_ROOT)

    def test_empty_tree_is_consistent_with_any_tree(self):
        verify_consistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)
        verify_consistency(0, 1, [], EMPTY_ROOT, self.R2)
        verify_consistency(0, 8, [], EMPTY_ROOT, CT_ROOTS[8])

    def test_empty_tree_with_wrong_root1_fails(self):
        with pytest.raises(ProofError, match="empty string"):
            verify_consistency(0, 1, [], self.R1, self.R2)
        with pytest.raises(ProofError):
            verify_consistency(0, 0, [], self.R1, self.R1)

    def test_empty_tree_with_nonempty_proof_fails(self):
        with pytest.raises(ProofError):
            verify_consistency(0, 1, [EMPTY_ROOT], EMPTY_ROOT, EMPTY_ROOT)

    @pytest.mark.parametrize("size1,size2", [(1, 0), (2, 1), (9, 8)])
    def test_shrinking_tree_fails(self, size1, size2):
        with pytest.raises(ProofError, match="never shrinks"):
            verify_consistency(size1, size2, [], self.R1, self.R2)

    def test_empty_proof_between_different_sizes_fails(self):
        with pytest.raises(ProofError, match="empty consistency proof"):
            verify_consistency(1, 2, [], self.R1, self.R2)

    def test_wrong_length_roots_fail(self):
        with pytest.raises(ProofError):
            verify_consistency(1, 1, [], b"WrongRoot", b"WrongRoot")


class TestProofGenerationEdgeCases:
    def test_inclusion_in_empty_tree_is_an_error(self):
        with pytest.raises(ValueError):
            MemoryTree().inclusion_proof(0, 0)

    @pytest.mark.parametrize("index,size", [(8, 8), (9, 8), (-1, 8), (0, 0)])
    def test_inclusion_index_out_of_range(self, index, size):
        with pytest.raises(ValueError, match="out of range"):
            inclusion_proof(ct_tree(), index, size)

    def test_consistency_m_greater_than_n_is_an_error(self):
        with pytest.raises(ValueError):
            consistency_proof(ct_tree(), 5, 4)

    @pytest.mark.parametrize("size", [0, 1, 5, 8])
    def test_consistency_m_equals_n_is_empty(self, size):
        assert consistency_proof(ct_tree(), size, size) == []

    @pytest.mark.parametrize("size", [0, 1, 5, 8])
    def test_consistency_from_zero_is_empty(self, size):
        assert consistency_proof(ct_tree(), 0, size) == []

    def test_sizes_beyond_the_stored_tree_are_errors(self):
        tree = ct_tree()
        with pytest.raises(ValueError):
            tree.root(9)
        with pytest.raises(ValueError):
            tree.consistency_proof(3, 9)
        with pytest.raises(KeyError):
            root(tree, 9)  # the bare function trusts the size; the reader refuses

    def test_empty_tree_root(self):
        assert MemoryTree().root() == EMPTY_ROOT
        assert root(MemoryTree(), 0) == EMPTY_ROOT

    def test_reader_returning_wrong_count_is_an_error(self):
        class Broken:
            def get_nodes(self, ids):
                return []

        with pytest.raises(ValueError, match="returned 0 hashes"):
            root(Broken(), 3)

    def test_proofs_read_only_complete_nodes_in_one_call(self):
        tree = MemoryTree(distinct_leaves(100))
        reader = RecordingReader(tree, 37)
        inclusion_proof(reader, 20, 37)
        consistency_proof(reader, 13, 37)
        root(reader, 37)
        assert len(reader.calls) == 3
        assert all(len(ids) <= 2 * (37).bit_length() for ids in reader.calls)


class TestMerkleProperties:
    @settings(max_examples=40, deadline=None)
    @given(size=st.integers(1, 300))
    def test_every_inclusion_proof_verifies(self, size):
        leaves = distinct_leaves(size)
        tree = MemoryTree(leaves)
        expected_root = root_from_leaf_hashes(leaves)
        assert tree.root() == expected_root
        for index in range(size):
            proof = tree.inclusion_proof(index)
            verify_inclusion(leaves[index], index, size, proof, expected_root)

    @settings(max_examples=40, deadline=None)
    @given(size2=st.integers(0, 300))
    def test_every_consistency_proof_verifies(self, size2):
        leaves = distinct_leaves(size2)
        tree = MemoryTree(leaves)
        root2 = root_from_leaf_hashes(leaves)
        for size1 in range(size2 + 1):
            proof = tree.consistency_proof(size1, size2)
            verify_consistency(size1, size2, proof, root_from_leaf_hashes(leaves[:size1]), root2)

    @settings(max_examples=30, deadline=None)
    @given(size=st.integers(1, 70))
    def test_proofs_equal_rfc_path_and_subproof(self, size):
        leaves = distinct_leaves(size, b"ref")
        tree = MemoryTree(leaves + distinct_leaves(5, b"extra"))  # stored tree is bigger
        assert tree.root(size) == ref_mth(leaves)
        for index in range(size):
            assert tree.inclusion_proof(index, size) == ref_path(index, leaves)
        for size1 in range(1, size + 1):
            assert tree.consistency_proof(size1, size) == ref_subproof(size1, leaves, True)

    @settings(max_examples=200, deadline=None)
    @given(data=st.data())
    def test_tampered_inclusion_proof_fails(self, data):
        size = data.draw(st.integers(2, 300), label="size")
        index = data.draw(st.integers(0, size - 1), label="index")
        leaves = distinct_leaves(size)
        tree = MemoryTree(leaves)
        proof, root_ = tree.inclusion_proof(index), tree.root()
        element = data.draw(st.integers(0, len(proof) - 1), label="element")
        byte = data.draw(st.integers(0, 31), label="byte")
        bit = data.draw(st.integers(0, 7), label="bit")
        tampered = list(proof)
        tampered[element] = (
            proof[element][:byte] + bytes([proof[element][byte] ^ (1 << bit)]) + proof[element][byte + 1 :]
        )
        with pytest.raises(ProofError):
            verify_inclusion(leaves[index], index, size, tampered, root_)

    @settings(max_examples=200, deadline=None)
    @given(data=st.data())
    def test_wrong_index_fails(self, data):
        size = data.draw(st.integers(2, 300), label="size")
        index = data.draw(st.integers(0, size - 1), label="index")
        other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index), label="other")
        leaves = distinct_leaves(size)
        tree = MemoryTree(leaves)
        with pytest.raises(ProofError):
            verify_inclusion(leaves[index], other, size, tree.inclusion_proof(index), tree.root())

    @settings(max_examples=200, deadline=None)
    @given(data=st.data())
    def test_wrong_size_fails(self, data):
        # An inclusion proof does not by itself bind the tree size (two sizes can
        # share a path shape); the size is bound by the signed (size, root) pair.
        # So a proof must fail against the root of any other size, and against
        # its own root with size*2 and size//2 (the transparency-dev probes).
        size = data.draw(st.integers(1, 300), label="size")
        other = data.draw(st.integers(1, 300).filter(lambda s: s != size), label="other")
        index = data.draw(st.integers(0, size - 1), label="index")
        leaves = distinct_leaves(300)
        tree = MemoryTree(leaves)
        proof = tree.inclusion_proof(index, size)
        with pytest.raises(ProofError):
            verify_inclusion(leaves[index], index, other, proof, tree.root(other))
        for wrong in (size * 2, size // 2):
            with pytest.raises(ProofError):
                verify_inclusion(leaves[index], index, wrong, proof, tree.root(size))

    @settings(max_examples=200, deadline=None)
    @given(data=st.data())
    def test_tampered_consistency_proof_fails(self, data):
        size2 = data.draw(st.integers(2, 300), label="size2")
        size1 = data.draw(st.integers(1, size2 - 1), label="size1")
        leaves = distinct_leaves(size2)
        tree = MemoryTree(leaves)
        proof = tree.consistency_proof(size1, size2)
        root1, root2 = tree.root(size1), tree.root(size2)
        element = data.draw(st.integers(0, len(proof) - 1), label="element")
        byte = data.draw(st.integers(0, 31), label="byte")
        bit = data.draw(st.integers(0, 7), label="bit")
        tampered = list(proof)
        tampered[element] = (
            proof[element][:byte] + bytes([proof[element][byte] ^ (1 << bit)]) + proof[element][byte + 1 :]
        )
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, tampered, root1, root2)
        for s1, s2, r1, r2, p, desc in corrupt_consistency(size1, size2, root1, root2, proof):
            with pytest.raises(ProofError):
                verify_consistency(s1, s2, p, r1, r2)
                pytest.fail(f"accepted corrupted proof: {desc}")

    @settings(max_examples=200, deadline=None)
    @given(data=st.data())
    def test_wrong_consistency_sizes_fail(self, data):
        size2 = data.draw(st.integers(2, 300), label="size2")
        size1 = data.draw(st.integers(1, size2 - 1), label="size1")
        leaves = distinct_leaves(300)
        tree = MemoryTree(leaves)
        proof = tree.consistency_proof(size1, size2)
        root1, root2 = tree.root(size1), tree.root(size2)
        other1 = data.draw(st.integers(1, 300).filter(lambda s: s != size1), label="other1")
        other2 = data.draw(st.integers(2, 300).filter(lambda s: s != size2), label="other2")
        with pytest.raises(ProofError):  # size1 is bound even against the same roots
            verify_consistency(other1, size2, proof, root1, root2)
        with pytest.raises(ProofError):  # size2 is bound through root2
            verify_consistency(size1, other2, proof, root1, tree.root(other2))

    @settings(max_examples=100, deadline=None)
    @given(
        start=st.integers(0, 200),
        batches=st.lists(st.integers(0, 40), min_size=1, max_size=12),
    )
    def test_append_nodes_in_batches_equals_building_at_once(self, start, batches):
        leaves = distinct_leaves(start + sum(batches))
        store = DictStore()
        for (node_id, value) in append_nodes(0, leaves[:start], store):
            store.nodes[node_id] = value
        size = start
        for n in batches:
            store.reads.clear()
            new = append_nodes(size, leaves[size : size + n], store)
            ids = [node_id for node_id, _ in new]
            assert len(ids) == len(set(ids)) and not set(ids) & set(store.nodes), "rewrote a node"
            # Reads: one batched call for the compact range of the old tree (O(log n)).
            assert store.reads == ([range_nodes(0, size)] if n and size else [])
            store.nodes.update(new)
            size += n
            assert root(store, size) == root_from_leaf_hashes(leaves[:size])
        assert store.nodes == MemoryTree(leaves).nodes()

    def test_append_nodes_to_empty_tree_reads_nothing(self):
        store = DictStore()
        new = append_nodes(0, distinct_leaves(4), store)
        assert store.reads == []
        assert [node_id for node_id, _ in new] == [(0, 0), (0, 1), (1, 0), (0, 2), (0, 3), (1, 1), (2, 0)]

    def test_append_nodes_rejects_bad_input(self):
        with pytest.raises(ValueError):
            append_nodes(-1, [], DictStore())
        with pytest.raises(ValueError):
            append_nodes(0, [b"short"], DictStore())


class TestOneImplementation:
    """The tree, its proofs and their checks are written once, in the regulator's verifier; the register's
    modules are that code under their old names, not a copy."""

    def test_register_names_are_the_verifier_objects(self):
        import register_verifier.merkle as vm
        import register_verifier.tree as vt

        for name in hashing.__all__:
            assert getattr(hashing, name) is getattr(vm, name), name
        for name in verification.__all__:
            assert getattr(verification, name) is getattr(vm, name), name
        assert tree is vt  # the register uses the verifier's tree under its own name, no shim

    def test_no_second_copy_in_the_register(self):
        for module in (hashing, verification):
            src = pathlib.Path(module.__file__).read_text(encoding="utf-8")
            assert "def " not in src and "class " not in src, module.__name__
        assert not pathlib.Path(hashing.__file__).with_name("tree.py").exists()

    def test_verifier_modules_import_nothing_from_register(self):
        for path in (CLIENT_MERKLE, CLIENT_MERKLE.with_name("tree.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    assert not any(a.name.split(".")[0] == "register" for a in node.names)
                elif isinstance(node, ast.ImportFrom):
                    assert node.level == 1 or (node.module or "").split(".")[0] != "register"


class TestModuleBoundaries:
    """Hashing and proof checks use the standard library only; the stored tree uses only them."""

    @staticmethod
    def imported_modules(path: pathlib.Path) -> set[str]:
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                names.add("." * node.level + (node.module or ""))
        return names

    def test_hashing_uses_the_standard_library_only(self):
        for name in self.imported_modules(CLIENT_MERKLE):
            assert name.split(".")[0] in sys.stdlib_module_names, name

    def test_tree_uses_only_the_hashing_module(self):
        for name in self.imported_modules(CLIENT_MERKLE.with_name("tree.py")):
            assert name == ".merkle" or name.split(".")[0] in sys.stdlib_module_names, name
