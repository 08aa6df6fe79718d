"""Published test vectors against the verifier's own copy of the proof and note code.

Imports only ``register_verifier`` (put on sys.path by conftest.py), never ``register``.
"""

from __future__ import annotations

import hashlib
import pathlib
import subprocess
import sys

import pytest

from register_verifier.merkle import (
    EMPTY_ROOT,
    ProofError,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from register_verifier.note import Checkpoint, NoteError, NoteVerifier, key_id

SRC = pathlib.Path(__file__).resolve().parents[1] / "src"
h = bytes.fromhex

# ---------------------------------------------------------------------------
# RFC 6962 vectors: google/certificate-transparency cpp/merkletree/merkle_tree_test.cc
# (kInputs, kSHA256Roots, kSHA256Paths, kSHA256Proofs) and transparency-dev/merkle
# proof/verify_test.go (same data plus the 6 -> 7 consistency proof).  Those files
# number leaves from 1; indices below are 0-based.
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

CT_ROOTS = {
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

CT_INCLUSION = [
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

CT_CONSISTENCY = [
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

SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")

# golang.org/x/mod sumdb/note/note_test.go
GO_PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
).encode()
GO_PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
).encode()
GO_ENOCH_SIG = (
    "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
).encode()

# The register's own checkpoint format: golden vector generated by
# register.audit.note with a fixed test seed (same vector as tests/audit/test_note.py).
GOLDEN_VKEY = "register.example/audit-log+184967a0+AVdINyr6BQqUDfiLfv/YRw+qUa9mg3of2zvMDaabkV8l"
GOLDEN_NOTE = (
    "register.example/audit-log\n"
    "8\n"
    "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n"
    "Timestamp: 1700000000\n"
    "\n"
    "— register.example/audit-log GElnoOJTuhW4Lj70xQF78e6iPWd0u7X8ilgu/eg6RWTWPNuywbD0Vs3h6MI5FYi3nCwzBblKpMl+Vm4RTDBaCz9x+wU=\n"
).encode()


def inclusion_probes(index, size, proof, root_, leaf):
    """transparency-dev/merkle verify_test.go corruptInclusionProof: every probe must fail."""
    probes = [
        (index - 1, size, root_, leaf, proof),
        (index + 1, size, root_, leaf, proof),
        (index ^ 2, size, root_, leaf, proof),
        (index, size * 2, root_, leaf, proof),
        (index, size // 2, root_, leaf, proof),
        (index, size, root_, leaf_hash(b"WrongLeaf"), proof),
        (index, size, EMPTY_ROOT, leaf, proof),
        (index, size, SOME_HASH, leaf, proof),
        (index, size, root_, leaf, proof + [b""]),
        (index, size, root_, leaf, proof + [root_]),
        (index, size, root_, leaf, [b""] + proof),
        (index, size, root_, leaf, [root_] + proof),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bytes([wrong[i][0] ^ 8]) + wrong[i][1:]
        probes.append((index, size, root_, leaf, wrong))
    if proof:
        probes.append((index, size, root_, leaf, proof[:-1]))
    if len(proof) > 1:
        probes.append((index, size, root_, leaf, [proof[0], SOME_HASH] + proof[1:]))
    return probes


def consistency_probes(size1, size2, root1, root2, proof):
    """transparency-dev/merkle verify_test.go corruptConsistencyProof: every probe must fail."""
    probes = [
        (size1 - 1, size2, root1, root2, proof),
        (size1 + 1, size2, root1, root2, proof),
        (size1 ^ 2, size2, root1, root2, proof),
        (size1, size2 * 2, root1, root2, proof),
        (size1, size2 // 2, root1, root2, proof),
        (size1, size2, leaf_hash(b"WrongRoot"), root2, proof),
        (size1, size2, root1, leaf_hash(b"WrongRoot"), proof),
        (size1, size2, root2, root1, proof),
        (size1, size2, root1, root2, []),
        (size1, size2, root1, root2, proof + [b""]),
        (size1, size2, root1, root2, proof + [root1]),
        (size1, size2, root1, root2, proof + [root2]),
        (size1, size2, root1, root2, [b""] + proof),
        (size1, size2, root1, root2, [root1] + proof),
        (size1, size2, root1, root2, [root2] + proof),
        (size1, size2, root1, root2, [proof[0]] + proof),
        (size1, size2, root1, root2, proof[:-1]),
    ]
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bytes([wrong[i][0] ^ 16]) + wrong[i][1:]
        probes.append((size1, size2, root1, root2, wrong))
    return probes


class TestIndependence:
    def test_modules_come_from_the_client_source_tree(self):
        import register_verifier.merkle as m
        import register_verifier.note as n

        for mod in (m, n):
            assert pathlib.Path(mod.__file__).resolve().is_relative_to(SRC)

    def test_importing_the_verifier_loads_nothing_from_register(self):
        code = (
            "import sys; sys.path.insert(0, sys.argv[1]);"
            "import register_verifier.merkle, register_verifier.note;"
            "bad = [m for m in sys.modules if m == 'register' or m.startswith('register.')];"
            "assert not bad, bad"
        )
        subprocess.run([sys.executable, "-c", code, str(SRC)], check=True)


class TestHashing:
    # transparency-dev/merkle rfc6962/rfc6962_test.go
    def test_empty_root(self):
        assert EMPTY_ROOT == hashlib.sha256(b"").digest()

    def test_leaf_hash(self):
        assert leaf_hash(b"") == CT_ROOTS[1]
        assert leaf_hash(b"L123456") == h("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56")

    def test_node_hash(self):
        assert node_hash(b"N123", b"N456") == h(
            "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
        )


class TestRoots:
    @pytest.mark.parametrize("size", range(0, 9))
    def test_root_for_every_size(self, size):
        assert root_from_leaf_hashes([leaf_hash(d) for d in CT_LEAVES[:size]]) == CT_ROOTS[size]


class TestInclusionVectors:
    @pytest.mark.parametrize("index,size,path", CT_INCLUSION)
    def test_vector_verifies(self, index, size, path):
        leaf = leaf_hash(CT_LEAVES[index])
        assert root_from_inclusion_proof(leaf, index, size, path) == CT_ROOTS[size]
        verify_inclusion(leaf, index, size, path, CT_ROOTS[size])

    @pytest.mark.parametrize("index,size,path", CT_INCLUSION)
    def test_corrupted_vector_fails(self, index, size, path):
        leaf = leaf_hash(CT_LEAVES[index])
        for i, s, r, lf, p in inclusion_probes(index, size, path, CT_ROOTS[size], leaf):
            with pytest.raises(ProofError):
                verify_inclusion(lf, i, s, p, r)

    @pytest.mark.parametrize("index,size", [(0, 0), (1, 1), (8, 8)])
    def test_index_out_of_range_fails(self, index, size):
        with pytest.raises(ProofError):
            verify_inclusion(SOME_HASH, index, size, [], SOME_HASH)


class TestConsistencyVectors:
    @pytest.mark.parametrize("size1,size2,proof", CT_CONSISTENCY)
    def test_vector_verifies(self, size1, size2, proof):
        verify_consistency(size1, size2, proof, CT_ROOTS[size1], CT_ROOTS[size2])

    @pytest.mark.parametrize("size1,size2,proof", [v for v in CT_CONSISTENCY if v[2]])
    def test_corrupted_vector_fails(self, size1, size2, proof):
        for s1, s2, r1, r2, p in consistency_probes(size1, size2, CT_ROOTS[size1], CT_ROOTS[size2], proof):
            with pytest.raises(ProofError):
                verify_consistency(s1, s2, p, r1, r2)

    def test_empty_tree_is_a_prefix_of_every_tree(self):
        verify_consistency(0, 8, [], EMPTY_ROOT, CT_ROOTS[8])
        with pytest.raises(ProofError):
            verify_consistency(0, 8, [], CT_ROOTS[1], CT_ROOTS[8])

    def test_shrinking_fails(self):
        with pytest.raises(ProofError):
            verify_consistency(8, 7, [], CT_ROOTS[8], CT_ROOTS[7])

    def test_equal_sizes_need_equal_roots(self):
        verify_consistency(8, 8, [], CT_ROOTS[8], CT_ROOTS[8])
        with pytest.raises(ProofError):
            verify_consistency(8, 8, [], CT_ROOTS[8], CT_ROOTS[7])


class TestNoteVectors:
    def test_go_key_id(self):
        verifier = NoteVerifier.from_vkey(GO_PETER_VKEY)
        assert verifier.key_id == bytes.fromhex("c74f20a3")
        assert verifier.verifier_key() == GO_PETER_VKEY

    def test_key_id_formula(self):
        raw = NoteVerifier.from_vkey(GO_PETER_VKEY)._raw
        assert key_id("PeterNeumann", raw) == hashlib.sha256(b"PeterNeumann\n\x01" + raw).digest()[:4]

    def test_go_note_opens(self):
        assert NoteVerifier.from_vkey(GO_PETER_VKEY).open(GO_TEXT + b"\n" + GO_PETER_SIG) == GO_TEXT

    def test_go_note_with_extra_signature_opens(self):
        note = GO_TEXT + b"\n" + GO_PETER_SIG + GO_ENOCH_SIG
        assert NoteVerifier.from_vkey(GO_PETER_VKEY).open(note) == GO_TEXT

    def test_go_note_by_other_key_fails(self):
        with pytest.raises(NoteError):
            NoteVerifier.from_vkey(GO_PETER_VKEY).open(GO_TEXT + b"\n" + GO_ENOCH_SIG)

    def test_tampered_go_note_fails(self):
        with pytest.raises(NoteError):
            NoteVerifier.from_vkey(GO_PETER_VKEY).open(GO_TEXT.replace(b"problem", b"pr0blem", 1) + b"\n" + GO_PETER_SIG)

    def test_golden_checkpoint(self):
        cp = Checkpoint.parse_body(NoteVerifier.from_vkey(GOLDEN_VKEY).open(GOLDEN_NOTE))
        assert (cp.origin, cp.size, cp.root_hash, cp.timestamp) == (
            "register.example/audit-log",
            8,
            CT_ROOTS[8],
            1700000000,
        )
        assert cp.to_body() == GOLDEN_NOTE[: GOLDEN_NOTE.rfind(b"\n\n") + 1]

    def test_golden_checkpoint_tampered_fails(self):
        with pytest.raises(NoteError):
            NoteVerifier.from_vkey(GOLDEN_VKEY).open(GOLDEN_NOTE.replace(b"\n8\n", b"\n9\n"))

    def test_plain_c2sp_checkpoint_is_not_our_format(self):
        with pytest.raises(NoteError):
            Checkpoint.parse_body(b"example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n")
