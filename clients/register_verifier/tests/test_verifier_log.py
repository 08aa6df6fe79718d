"""run_verify against a fake register: pinned key, checkpoints, append-only, single leaves."""

from __future__ import annotations

import base64
import json

import pytest

from fake_register import ORIGIN, T0, FakeRegister, Signer, b64, checkpoint_body, leaf_hash, mth, snapshot
from register_verifier.merkle import EMPTY_ROOT
from register_verifier.state import State, StateError
from register_verifier.verify import UsageError, VerificationError, run_verify


def history(state_dir):
    return [json.loads(line) for line in (state_dir / "history.jsonl").read_text().splitlines()]


# ---------------------------------------------------------------------------
# A clean log
# ---------------------------------------------------------------------------


class TestCleanLog:
    def test_several_growing_runs_pass(self, fake, verify, state_dir):
        sizes = []
        for grow in (0, 3, 0, 1000, 1, 57):
            fake.add(grow)
            fake.publish()
            result = verify()
            sizes.append(result.checkpoint.size)
            assert result.checkpoint.size == len(fake.leaves)
            assert result.checkpoint.root_hash == mth(fake.hashes())
            assert (state_dir / "checkpoint").read_bytes() == fake.current["note"].encode()
        assert sizes == [8, 11, 11, 1011, 1012, 1069]
        rows = history(state_dir)
        assert [r["size"] for r in rows] == sizes
        assert [r["previous_size"] for r in rows] == [None] + sizes[:-1]
        assert all(set(r) >= {"time", "size", "root"} for r in rows)
        assert rows[-1]["root"] == b64(mth(fake.hashes()))
        # one consistency proof per growth from a non-empty tree, none for "unchanged"
        assert fake.count("/v1/audit/proof/consistency") == 4
        assert (state_dir / "log-key").read_text().strip() == fake.vkey

    def test_summary_is_one_paragraph(self, fake, verify):
        verify()
        fake.add(5)
        fake.publish()
        text = verify(leaf_indices=[3]).summary()
        assert "\n" not in text
        assert text.startswith("OK: audit log register.example/audit-log verified at size 13")
        assert "size 8 -> 13" in text and "Leaf 3" in text

    def test_republished_same_tree_passes(self, fake, verify):
        verify()
        fake.publish()  # same size and root, later timestamp
        result = verify()
        assert result.consistency.old_size == result.consistency.new_size == 8
        assert "Unchanged" in result.summary()

    def test_empty_log_then_growth(self, verify, state_dir):
        empty = FakeRegister()
        assert verify(register=empty).checkpoint.root_hash == EMPTY_ROOT
        empty.add(3)
        empty.publish()
        assert verify(register=empty).checkpoint.size == 3
        assert empty.count("/v1/audit/proof/consistency") == 0  # size 0 is a prefix of everything

    def test_every_pair_of_sizes(self, tmp_path):
        """Consistency from every m to every n <= 17 against the fake's independent tree."""
        for m in range(1, 17):
            reg = FakeRegister(leaves=m)
            sd = tmp_path / f"s{m}"
            with reg.client() as c:
                run_verify(c, State(sd), log_key=reg.vkey)
            for n in range(m + 1, 18):
                reg.add(1)
                reg.publish()
                with reg.client() as c:
                    run_verify(c, State(sd))

    def test_pinned_key_is_used_without_log_key(self, fake, verify, state_dir):
        verify()
        fake.add(1)
        fake.publish()
        with fake.client() as c:
            assert run_verify(c, State(state_dir)).checkpoint.size == 9

    def test_same_log_key_in_other_spelling_is_accepted(self, fake, verify):
        verify()
        name, keyid, key = fake.vkey.split("+")
        verify(log_key=f"  {name}+{keyid.upper()}+{key}\n")

    def test_witness_cosignature_is_ignored(self, fake, verify):
        witness = Signer("witness.example/w1")
        note = fake.current["note"].encode()
        body = note[: note.rfind(b"\n\n") + 1]
        fake.current["note"] = (note + witness.sign(body)[len(body) + 1 :]).decode()
        verify()


# ---------------------------------------------------------------------------
# Misbehaving logs
# ---------------------------------------------------------------------------


def expect_failure(verify, state_dir, match: str, **kw) -> VerificationError:
    before = snapshot(state_dir)
    with pytest.raises(VerificationError, match=match) as info:
        verify(**kw)
    assert snapshot(state_dir) == before, "a failed run must not touch the state dir"
    return info.value


class TestMisbehavingLog:
    def test_log_shrank(self, fake, verify, state_dir):
        verify()
        del fake.leaves[5:]
        fake.publish()
        err = expect_failure(verify, state_dir, "log shrank from 8 to 5")
        assert err.evidence["previous"]["size"] == 8 and err.evidence["new"]["size"] == 5
        assert err.evidence["new_note"] == fake.current["note"]

    def test_same_size_different_root_is_a_fork(self, fake, verify, state_dir):
        verify()
        old_root = b64(mth(fake.hashes()))
        fake.leaves[2] = b"rewritten history"
        fake.publish()
        err = expect_failure(verify, state_dir, "forked.*same size 8")
        assert err.evidence["previous_root"] == old_root
        assert err.evidence["new_root"] == fake.current["root_hash"]
        # both signed notes are in the evidence: together they prove the equivocation
        assert err.evidence["previous_note"] != err.evidence["new_note"]

    def test_rewritten_history_with_growth_fails_consistency(self, fake, verify, state_dir):
        verify()
        fake.leaves[2] = b"rewritten history"
        fake.add(4)
        fake.publish()
        err = expect_failure(verify, state_dir, "consistency proof from size 8 to 12 does not verify")
        assert err.evidence["first"] == 8 and err.evidence["second"] == 12

    def test_consistency_proof_that_does_not_verify(self, fake, verify, state_dir):
        verify()
        fake.add(5)
        fake.publish()
        fake.tamper_consistency = True
        err = expect_failure(verify, state_dir, "not an append-only extension")
        assert err.evidence["proof"]  # the bad proof itself is evidence
        assert err.evidence["first_root"] and err.evidence["second_root"] == fake.current["root_hash"]

    def test_consistency_answer_for_other_sizes(self, fake, verify, state_dir):
        verify()
        fake.add(5)
        fake.publish()
        real = fake._consistency
        fake._consistency = lambda first, second: real(first - 1, second)
        expect_failure(verify, state_dir, "answered for 7 -> 13")

    def test_checkpoint_signed_by_another_key(self, fake, verify, state_dir):
        verify()
        fake.add(1)
        fake.publish(signer=Signer(ORIGIN))  # same name, different key
        err = expect_failure(verify, state_dir, "checkpoint not signed by the pinned log key")
        assert err.evidence["pinned_key"] == fake.vkey

    def test_first_checkpoint_signed_by_another_key(self, fake, verify, state_dir):
        fake.publish(signer=Signer(ORIGIN))
        expect_failure(verify, state_dir, "checkpoint not signed by the pinned log key")
        assert not state_dir.exists()

    def test_altered_note_fails(self, fake, verify, state_dir):
        note = fake.current["note"]
        fake.current["note"] = note.replace("\n8\n", "\n9\n", 1)
        fake.current["size"] = 9
        expect_failure(verify, state_dir, "checkpoint not signed by the pinned log key")

    @pytest.mark.parametrize(
        "field,value",
        [("size", 9), ("size", 7), ("root_hash", b64(b"\x00" * 32)), ("timestamp", T0), ("timestamp", T0 + 61)],
    )
    def test_json_fields_disagreeing_with_the_note(self, fake, verify, state_dir, field, value):
        fake.current[field] = value
        err = expect_failure(verify, state_dir, f"checkpoint JSON disagrees with its signed note \\({field}\\)")
        assert err.evidence["disagreements"][field]["json"] == value

    def test_origin_not_the_key_name(self, fake, verify, state_dir):
        body = checkpoint_body("other.example/log", 8, mth(fake.hashes()), fake.clock + 1)
        fake.current["note"] = fake.signer.sign(body).decode()
        fake.current["timestamp"] = fake.clock + 1
        err = expect_failure(verify, state_dir, "origin 'other.example/log' does not match")
        assert err.evidence["expected_origin"] == ORIGIN

    def test_signed_but_malformed_checkpoint(self, fake, verify, state_dir):
        body = f"{ORIGIN}\n8\n{fake.current['root_hash']}\n".encode()  # no Timestamp line
        fake.current["note"] = fake.signer.sign(body).decode()
        expect_failure(verify, state_dir, "not a valid checkpoint")

    def test_size_zero_with_a_non_empty_root(self, verify, state_dir):
        reg = FakeRegister()
        reg.publish(root=leaf_hash(b"x"))
        expect_failure(verify, state_dir, "empty-tree root", register=reg)

    def test_timestamp_going_backwards(self, fake, verify, state_dir):
        verify()
        fake.add(2)
        fake.publish(timestamp=fake.clock - 1)
        err = expect_failure(verify, state_dir, "timestamp went backwards")
        assert err.evidence["new"]["timestamp"] < err.evidence["previous"]["timestamp"]

    def test_timestamp_backwards_at_same_size(self, fake, verify, state_dir):
        verify()
        fake.publish(timestamp=fake.clock - 5)
        expect_failure(verify, state_dir, "timestamp went backwards")

    def test_failed_run_keeps_stored_checkpoint_and_history(self, fake, verify, state_dir):
        verify()
        good_note = (state_dir / "checkpoint").read_bytes()
        del fake.leaves[3:]
        fake.publish()
        with pytest.raises(VerificationError):
            verify()
        assert (state_dir / "checkpoint").read_bytes() == good_note
        assert len(history(state_dir)) == 1
        # the log comes back honest and longer than what we stored: it must still extend *our* checkpoint
        fake.leaves.clear()
        fake.add(20)
        fake.publish()
        with pytest.raises(VerificationError, match="consistency proof from size 8 to 20"):
            verify()
        assert (state_dir / "checkpoint").read_bytes() == good_note


# ---------------------------------------------------------------------------
# Pinned key
# ---------------------------------------------------------------------------


class TestPinnedKey:
    def test_first_run_needs_a_key(self, fake, verify, state_dir):
        with pytest.raises(UsageError, match="--log-key"):
            verify(log_key=None)
        assert not state_dir.exists()

    def test_log_key_different_from_pinned_is_refused(self, fake, verify, state_dir):
        verify()
        other = Signer(ORIGIN)
        before = snapshot(state_dir)
        with pytest.raises(UsageError, match="new state dir"):
            verify(log_key=other.vkey)
        assert snapshot(state_dir) == before

    def test_malformed_log_key(self, verify):
        with pytest.raises(UsageError, match="invalid log key"):
            verify(log_key="not-a-key")

    def test_wrong_log_key_on_first_run_fails_and_pins_nothing(self, fake, verify, state_dir):
        with pytest.raises(VerificationError, match="not signed by the pinned log key"):
            verify(log_key=Signer(ORIGIN).vkey)
        assert not (state_dir / "log-key").exists()

    def test_trust_on_first_use_pins_and_warns(self, fake, verify, state_dir):
        warnings = []
        result = verify(log_key=None, trust_on_first_use=True, warn=warnings.append)
        assert result.key_newly_pinned and result.trust_on_first_use
        assert (state_dir / "log-key").read_text().strip() == fake.vkey
        assert len(warnings) == 1 and "TRUST ON FIRST USE" in warnings[0] and fake.vkey in warnings[0]
        assert fake.count("/v1/audit/log-key") == 1
        # afterwards the pinned key is used and the register's key endpoint is not consulted
        fake.add(1)
        fake.publish()
        verify(log_key=None, trust_on_first_use=True, warn=warnings.append)
        assert fake.count("/v1/audit/log-key") == 1 and len(warnings) == 1

    def test_trust_on_first_use_rejects_an_inconsistent_key_answer(self, fake, verify, monkeypatch):
        other = Signer(ORIGIN)

        def lying(request):
            if request.url.path == "/v1/audit/log-key":
                import httpx

                return httpx.Response(200, json={
                    "origin": ORIGIN, "vkey": fake.vkey, "algorithm": "Ed25519",
                    "public_key": b64(other.public), "max_merge_delay_seconds": 3600,
                })
            return None

        fake.fail = lying
        with pytest.raises(VerificationError, match="public_key is not the key inside vkey"):
            verify(log_key=None, trust_on_first_use=True)

    def test_corrupt_stored_checkpoint_is_a_state_error(self, fake, verify, state_dir):
        verify()
        (state_dir / "checkpoint").write_bytes(b"garbage\n")
        with pytest.raises(StateError, match="stored checkpoint"):
            verify()


# ---------------------------------------------------------------------------
# --leaf-index
# ---------------------------------------------------------------------------


class TestLeafIndex:
    def test_leaves_verify(self, fake, verify, state_dir):
        result = verify(leaf_indices=[0, 7, 3, 3])
        assert [lr.index for lr in result.leaves] == [0, 7, 3]
        assert result.leaves[1].leaf_hash == leaf_hash(fake.leaves[7])
        assert history(state_dir)[-1]["leaf_indices"] == [0, 7, 3]

    def test_tampered_leaf_bytes_are_caught(self, fake, verify, state_dir):
        verify()
        fake.served_leaves[5] = b'{"event_id": "evt-000006", "action": "nothing to see"}'
        err = expect_failure(verify, state_dir, "leaf 5: the bytes the register serves are not the leaf", leaf_indices=[2, 5])
        ev = err.evidence
        assert ev["leaf_index"] == 5
        assert ev["served_leaf_hash"] == b64(leaf_hash(fake.served_leaves[5]))
        assert ev["logged_leaf_hash"] == b64(leaf_hash(fake.leaves[5]))
        assert ev["logged_leaf_hash_verifies"] is True
        assert base64.b64decode(ev["served_leaf_bytes"]) == fake.served_leaves[5]

    def test_bad_inclusion_proof(self, fake, verify, state_dir):
        fake.tamper_inclusion = True
        err = expect_failure(verify, state_dir, "leaf 4: inclusion proof does not verify", leaf_indices=[4])
        assert err.evidence["logged_leaf_hash_verifies"] is False

    def test_leaf_hash_field_disagreeing_with_bytes(self, fake, verify, state_dir):
        real = fake._inclusion

        def lie(index, size):
            answer = real(index, size)
            body = json.loads(answer.content)
            body["leaf_hash"] = b64(b"\x01" * 32)
            import httpx

            return httpx.Response(200, json=body)

        fake._inclusion = lie
        expect_failure(verify, state_dir, "leaf_hash disagrees", leaf_indices=[1])

    def test_index_past_the_end_is_a_usage_error(self, fake, verify, state_dir):
        with pytest.raises(UsageError, match="leaf index 8 is not below the log size 8"):
            verify(leaf_indices=[8])
        assert not state_dir.exists()
