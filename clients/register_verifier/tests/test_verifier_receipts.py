"""--receipt: signed receipts and the merge-delay promise."""

from __future__ import annotations

import json

import pytest

from fake_register import MMD, ORIGIN, Signer, b64, leaf_hash, receipt_body, snapshot
from register_verifier.verify import (
    UsageError,
    VerificationError,
    load_receipt_file,
    parse_receipt,
    parse_receipt_body,
)


def check(verify, receipt_json, **kw):
    return verify(receipts=[parse_receipt(receipt_json, "test")], **kw)


class TestReceiptIncluded:
    def test_receipt_present_is_ok(self, fake, verify, state_dir):
        verify()
        r = fake.receipt("evt-exposure-1")
        fake.add(3)
        fake.publish()
        result = check(verify, r)
        [rr] = result.receipts
        assert (rr.event_id, rr.status, rr.leaf_index) == ("evt-exposure-1", "included", 8)
        assert "Receipt evt-exposure-1: included at leaf 8" in result.summary()
        last = [json.loads(x) for x in (state_dir / "history.jsonl").read_text().splitlines()][-1]
        assert last["receipts"] == [{"event_id": "evt-exposure-1", "status": "included", "leaf_index": 8}]

    def test_query_is_by_url_encoded_leaf_hash_and_new_size(self, fake, verify):
        r = fake.receipt()
        fake.publish()
        check(verify, r)
        [req] = [q for q in fake.requests if "leaf_hash" in q.url.params]
        assert req.url.params["leaf_hash"] == r["leaf_hash"]
        assert req.url.params["tree_size"] == str(len(fake.leaves))
        raw = req.url.query.decode().split("leaf_hash=")[1].split("&")[0]
        assert raw.endswith("%3D") and not {"+", "/", "="} & set(raw)  # base64 is URL-encoded

    def test_receipt_whose_inclusion_proof_is_bad(self, fake, verify, state_dir):
        r = fake.receipt()
        fake.publish()
        fake.tamper_inclusion = True
        with pytest.raises(VerificationError, match="inclusion proof does not verify"):
            check(verify, r)
        assert not state_dir.exists()


class TestDroppedReceipts:
    def test_missing_past_the_merge_delay_fails(self, fake, verify, state_dir):
        verify()
        before = snapshot(state_dir)
        r = fake.receipt("evt-dropped", logged=False)
        fake.clock += MMD + 1
        fake.add(2)
        fake.publish()
        with pytest.raises(VerificationError, match="the operator dropped an access it signed a receipt for") as info:
            check(verify, r)
        ev = info.value.evidence
        assert ev["receipt"] == r  # the receipt itself is the evidence
        assert ev["event_id"] == "evt-dropped" and ev["leaf_hash"] == r["leaf_hash"]
        assert ev["deadline"] == ev["receipt_timestamp"] + MMD
        assert ev["provable_from_signed_notes_alone"] is True  # checkpoint signed after the deadline
        assert ev["checkpoint"]["size"] == 10
        assert snapshot(state_dir) == before

    def test_missing_past_delay_with_a_stale_checkpoint_still_fails(self, fake, verify):
        r = fake.receipt("evt-dropped", logged=False)
        with pytest.raises(VerificationError, match="dropped") as info:
            check(verify, r, now=lambda: fake.clock + MMD + 1)
        assert info.value.evidence["provable_from_signed_notes_alone"] is False

    def test_logged_but_hidden_from_lookup_counts_as_dropped(self, fake, verify):
        r = fake.receipt("evt-hidden")
        fake.publish(advance=MMD + 60)
        fake.hidden_hashes.add(leaf_hash(fake.leaves[-1]))
        with pytest.raises(VerificationError, match="dropped"):
            check(verify, r)

    def test_missing_within_the_delay_is_pending(self, fake, verify, state_dir):
        r = fake.receipt("evt-soon", logged=False)
        fake.publish(advance=10)
        result = check(verify, r)
        [rr] = result.receipts
        assert rr.status == "pending" and rr.leaf_index is None
        assert "PENDING" in result.summary() and "evt-soon" in result.summary()
        assert (state_dir / "checkpoint").read_bytes() == fake.current["note"].encode()  # not a failure

    def test_exactly_at_the_deadline_is_still_pending(self, fake, verify):
        at = fake.clock
        r = fake.receipt("evt-edge", logged=False, at=at)
        result = check(verify, r, now=lambda: at + MMD)
        assert result.receipts[0].status == "pending"
        with pytest.raises(VerificationError, match="dropped"):
            check(verify, r, now=lambda: at + MMD + 1)

    def test_pending_then_merged(self, fake, verify):
        r = fake.receipt("evt-late", logged=False)
        assert check(verify, r).receipts[0].status == "pending"
        fake.leaves.append(json.dumps({"event_id": "evt-late", "occurred_at": fake.clock}).encode())
        fake.publish()
        assert check(verify, r).receipts[0].status == "included"


class TestForgedReceipts:
    def test_signature_by_another_key_fails(self, fake, verify, state_dir):
        r = fake.receipt("evt-forged", signer=Signer(ORIGIN))
        fake.publish()
        with pytest.raises(VerificationError, match="not signed by the pinned log key \\(forged or altered\\)") as info:
            check(verify, r)
        assert info.value.evidence["receipt"] == r
        assert not state_dir.exists()

    def test_altered_signed_text_fails(self, fake, verify):
        r = fake.receipt("evt-1")
        fake.publish()
        r["note"] = r["note"].replace("evt-1", "evt-2")
        r["event_id"] = "evt-2"
        with pytest.raises(VerificationError, match="forged or altered"):
            check(verify, r)

    @pytest.mark.parametrize(
        "field,value",
        [("event_id", "evt-other"), ("leaf_hash", b64(b"\x07" * 32)), ("max_merge_delay_seconds", 999999)],
    )
    def test_json_disagreeing_with_the_signed_note_fails(self, fake, verify, field, value):
        r = fake.receipt("evt-1")
        fake.publish()
        r[field] = value
        with pytest.raises(VerificationError, match=f"receipt JSON disagrees with its signed note \\({field}\\)"):
            check(verify, r)

    def test_receipt_for_another_log_fails(self, fake, verify):
        lh = leaf_hash(b"x")
        note = fake.signer.sign(receipt_body("other.example/log", "evt-1", lh, fake.clock, MMD)).decode()
        r = {"event_id": "evt-1", "leaf_hash": b64(lh), "occurred_at": "2025-01-01T00:00:00Z",
             "max_merge_delay_seconds": MMD, "note": note}
        with pytest.raises(VerificationError, match="signed for log 'other.example/log'"):
            check(verify, r)

    def test_checkpoint_note_is_not_a_receipt(self, fake, verify):
        r = {"event_id": "e", "leaf_hash": b64(b"\x00" * 32), "occurred_at": "2025-01-01T00:00:00Z",
             "max_merge_delay_seconds": MMD, "note": fake.current["note"]}
        with pytest.raises(VerificationError, match="signed receipt text is malformed"):
            check(verify, r)


class TestReceiptFormats:
    def test_body_parser(self):
        lh = leaf_hash(b"x")
        st = parse_receipt_body(receipt_body(ORIGIN, "evt 1", lh, 1700000000, 60))
        assert (st.origin, st.event_id, st.leaf_hash, st.timestamp, st.max_merge_delay, st.deadline) == (
            ORIGIN, "evt 1", lh, 1700000000, 60, 1700000060)

    @pytest.mark.parametrize(
        "body",
        [
            b"o/receipt\ne\nAAAA\nTimestamp: 1\nMax-Merge-Delay: 1\n",  # hash too short
            b"o\ne\n%s\nTimestamp: 1\nMax-Merge-Delay: 1\n",  # no /receipt
            b"o/receipt\ne\n%s\nTimestamp: 01\nMax-Merge-Delay: 1\n",  # leading zero
            b"o/receipt\ne\n%s\nTimestamp: 1\nMax-Merge-Delay: 1",  # no final newline
            b"o/receipt\ne\n%s\nTimestamp: 1\n",  # missing line
            b"o/receipt\n\n%s\nTimestamp: 1\nMax-Merge-Delay: 1\n",  # empty event id
            b"o/receipt\ne\n%s\nMax-Merge-Delay: 1\nTimestamp: 1\n",  # order
        ],
    )
    def test_body_parser_rejects(self, body):
        if b"%s" in body:
            body = body % b64(leaf_hash(b"x")).encode()
        with pytest.raises(ValueError):
            parse_receipt_body(body)

    def test_receipt_file_forms(self, fake, verify, tmp_path):
        r = fake.receipt("evt-1")
        fake.publish()
        forms = {
            "bare.json": r,
            "exposure.json": {"person": {"country": "SE"}, "total_balance": 4500000, "receipt": r},
            "problem.json": {"title": "No valid consent", "status": 403, "code": "consent_missing", "receipt": r},
        }
        files = []
        for name, obj in forms.items():
            (tmp_path / name).write_text(json.dumps(obj))
            files.append(load_receipt_file(tmp_path / name))
        result = verify(receipts=files)
        assert [x.status for x in result.receipts] == ["included"] * 3

    def test_unusable_receipt_files(self, tmp_path):
        with pytest.raises(UsageError, match="cannot read"):
            load_receipt_file(tmp_path / "missing.json")
        (tmp_path / "bad.json").write_text("{not json")
        with pytest.raises(UsageError, match="not JSON"):
            load_receipt_file(tmp_path / "bad.json")
        (tmp_path / "none.json").write_text('{"total": 1}')
        with pytest.raises(UsageError, match="no receipt found"):
            load_receipt_file(tmp_path / "none.json")
        with pytest.raises(UsageError, match="lacks the field 'leaf_hash'"):
            parse_receipt({"receipt": {"event_id": "e", "note": "n", "occurred_at": "x", "max_merge_delay_seconds": 1}})
        with pytest.raises(UsageError, match="base64"):
            parse_receipt({"receipt": {"event_id": "e", "note": "n", "occurred_at": "x",
                                       "max_merge_delay_seconds": 1, "leaf_hash": "!!"}})
