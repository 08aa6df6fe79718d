"""--full: streaming root recomputation and locating the first bad leaf."""

from __future__ import annotations

import base64

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fake_register import FakeRegister, b64, leaf_hash, mth, snapshot
from register_verifier.merkle import root_from_leaf_hashes
from register_verifier.note import Checkpoint
from register_verifier.verify import CompactRange, VerificationError, find_first_bad_leaf, verify_full


def leaves_requests(reg: FakeRegister) -> list[tuple[int, int]]:
    return [
        (int(r.url.params["start"]), int(r.url.params["end"]))
        for r in reg.requests
        if r.url.path == "/v1/audit/leaves"
    ]


class TestCompactRange:
    @given(st.lists(st.binary(min_size=0, max_size=8), max_size=300))
    @settings(max_examples=60, deadline=None)
    def test_streaming_root_equals_batch_root(self, leaves):
        cr = CompactRange()
        hashes = [leaf_hash(d) for d in leaves]
        for i, h in enumerate(hashes, 1):
            cr.append(h)
            assert len(cr) == bin(i).count("1") <= i.bit_length()
        assert cr.root() == root_from_leaf_hashes(hashes) == mth(hashes)
        assert cr.size == len(leaves)

    def test_copy_is_independent(self):
        cr = CompactRange()
        cr.extend([leaf_hash(b"a"), leaf_hash(b"b")])
        other = cr.copy()
        other.append(leaf_hash(b"c"))
        assert cr.size == 2 and cr.root() == mth([leaf_hash(b"a"), leaf_hash(b"b")])

    def test_rejects_bad_hashes(self):
        with pytest.raises(ValueError):
            CompactRange().append(b"short")


class TestFullClean:
    def test_full_passes_in_pages(self, verify, state_dir):
        reg = FakeRegister(leaves=95, max_page=7)  # the server returns fewer than asked
        result = verify(register=reg, full=True, page_size=10)
        assert result.full.size == 95 and result.full.root_hash == mth(reg.hashes())
        reqs = leaves_requests(reg)
        assert reqs[0] == (0, 10) and all(e - s <= 10 for s, e in reqs)
        starts = [s for s, _ in reqs]
        assert starts == list(range(0, 95, 7))  # follows the server's `end`
        assert result.full.max_compact_range <= (95).bit_length()
        assert "all 95 leaves re-hashed" in result.summary()

    def test_default_page_size_is_the_server_maximum(self, verify):
        reg = FakeRegister(leaves=2500)
        verify(register=reg, full=True)
        assert leaves_requests(reg) == [(0, 1000), (1000, 2000), (2000, 2500)]

    def test_full_on_an_empty_log(self, verify):
        result = verify(register=FakeRegister(), full=True)
        assert result.full.size == 0

    def test_full_after_growth(self, verify):
        reg = FakeRegister(leaves=10)
        verify(register=reg)
        reg.add(33)
        reg.publish()
        assert verify(register=reg, full=True, page_size=8).full.size == 43


class TestFullTampered:
    @pytest.mark.parametrize("bad", [0, 1, 6, 7, 8, 9, 10, 31, 32, 63, 64, 94])
    def test_first_bad_index_is_reported(self, verify, state_dir, bad):
        reg = FakeRegister(leaves=95, max_page=10)
        verify(register=reg)
        before = snapshot(state_dir)
        reg.served_leaves[bad] = b"tampered"
        with pytest.raises(VerificationError, match=f"first bad leaf index {bad}$") as info:
            verify(register=reg, full=True, page_size=10)
        ev = info.value.evidence
        assert ev["leaf_index"] == bad
        assert ev["served_leaf_hash"] == b64(leaf_hash(b"tampered"))
        assert ev["logged_leaf_hash"] == b64(leaf_hash(reg.leaves[bad]))
        assert ev["served_leaf_hash_verifies"] is False and ev["logged_leaf_hash_verifies"] is True
        assert ev["signed_root"] == reg.current["root_hash"] and ev["computed_root"] != ev["signed_root"]
        assert snapshot(state_dir) == before

    def test_the_first_of_several_bad_leaves(self, verify):
        reg = FakeRegister(leaves=60)
        for i in (41, 17, 18, 59):
            reg.served_leaves[i] = b"x%d" % i
        with pytest.raises(VerificationError, match="first bad leaf index 17$"):
            verify(register=reg, full=True, page_size=16)

    def test_bad_leaf_in_a_large_log_with_few_requests(self, verify):
        reg = FakeRegister(leaves=2500)
        reg.served_leaves[1999] = b"tampered"
        with pytest.raises(VerificationError, match="first bad leaf index 1999$"):
            verify(register=reg, full=True)
        # 3 pages, then a second pass that stops at the bad page; one consistency proof per page
        # of the second pass plus ~log2(1000) for the binary search; one inclusion proof as evidence
        assert leaves_requests(reg) == [(0, 1000), (1000, 2000), (2000, 2500), (0, 1000), (1000, 2000)]
        assert reg.count("/v1/audit/proof/consistency") <= 2 + 11
        assert reg.count("/v1/audit/proof/inclusion") == 1

    def test_signed_root_that_matches_no_leaves(self, verify):
        reg = FakeRegister(leaves=20)
        reg.publish(root=leaf_hash(b"made up"))
        with pytest.raises(VerificationError, match="first bad leaf index 0$"):
            verify(register=reg, full=True, page_size=8)

    def test_leaves_inconsistent_between_passes(self):
        reg = FakeRegister(leaves=30)
        calls = {"n": 0}

        def first_pass_lies(request):
            if request.url.path != "/v1/audit/leaves":
                return None
            calls["n"] += 1
            if calls["n"] > 3:
                return None
            reg.served_leaves[12] = b"lie"
            try:
                return reg._leaves(int(request.url.params["start"]), int(request.url.params["end"]))
            finally:
                reg.served_leaves.clear()

        reg.fail = first_pass_lies
        cp = Checkpoint(reg.origin, 30, mth(reg.hashes()), reg.clock)
        with reg.client() as client, pytest.raises(VerificationError, match="inconsistent data"):
            verify_full(client, cp, page_size=10)

    def test_mismatch_stands_if_locating_breaks_off(self, verify):
        reg = FakeRegister(leaves=30)
        reg.served_leaves[3] = b"x"
        reg.fail = lambda r: (
            httpx.Response(500, json={"code": "internal", "title": "oops", "status": 500})
            if r.url.path == "/v1/audit/proof/consistency" else None
        )
        with pytest.raises(VerificationError, match="could not locate the first bad leaf.*500") as info:
            verify(register=reg, full=True, page_size=10)
        assert info.value.evidence["computed_root"] != info.value.evidence["signed_root"]

    def test_find_first_bad_leaf_on_a_good_log(self, fake):
        cp = Checkpoint(fake.origin, 8, mth(fake.hashes()), fake.clock)
        with fake.client() as client:
            bad, evidence = find_first_bad_leaf(client, cp, page_size=3)
        assert bad is None and base64.b64decode(evidence["second_pass_root"]) == cp.root_hash


class TestLeafPaging:
    def test_page_without_progress_is_a_protocol_error(self, fake):
        from register_verifier.client import ProtocolError

        fake.fail = lambda r: (
            httpx.Response(200, json={"start": 0, "end": 0, "leaves": []}) if r.url.path == "/v1/audit/leaves" else None
        )
        with fake.client() as client, pytest.raises(ProtocolError, match="no progress"):
            list(client.iter_leaf_pages(0, 8))

    def test_page_with_wrong_leaf_count(self, fake):
        from register_verifier.client import ProtocolError

        body = {"start": 0, "end": 3, "leaves": [b64(b"a")]}
        fake.fail = lambda r: httpx.Response(200, json=body) if r.url.path == "/v1/audit/leaves" else None
        with fake.client() as client, pytest.raises(ProtocolError, match="1 leaves for range"):
            client.leaves(0, 3)

    def test_client_never_asks_for_more_than_1000(self):
        reg = FakeRegister(leaves=1500)
        with reg.client() as client:
            pages = list(client.iter_leaf_pages(0, 1500, page_size=5000))
        assert [(p.start, p.end) for p in pages] == [(0, 1000), (1000, 1500)]
