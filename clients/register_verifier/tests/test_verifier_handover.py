"""Following a log-key handover (SPEC.md section 4): pinning stays safe when the register changes its key.

A verifier that pinned the old key accepts checkpoints by the new key only through a handover signed by the
pinned key (and by the new key); it then pins the new key. An unknown key, or a forged handover, is refused
and leaves the state dir as it was.
"""

from __future__ import annotations

import json

import pytest
from fake_register import ORIGIN, Signer, snapshot
from register_verifier.handover import Handover, KeyChain, open_handover, sign_handover
from register_verifier.note import NoteError, NoteSigner
from register_verifier.state import State
from register_verifier.verify import VerificationError, parse_receipt


@pytest.fixture
def verify(verify, fake, state_dir):
    """As conftest's, but --log-key (the key first published) only on the first run: later runs use the pin."""
    first = fake.vkey

    def run(**kw):
        kw.setdefault("log_key", None if (state_dir / "log-key").exists() else first)
        return verify(**kw)

    return run


def new_key(tag: str = "new") -> Signer:
    return Signer(ORIGIN, seed=tag.encode())


class TestFollow:
    def test_pinned_key_follows_a_signed_handover_and_pins_the_new_key(self, fake, verify, state_dir):
        verify()
        new = new_key()
        fake.add(3)
        fake.rotate(new)
        fake.add(2)
        fake.publish()
        warnings: list[str] = []
        result = verify(warn=warnings.append)
        assert result.keys_followed == [new.vkey]
        assert State(state_dir).read_log_key() == new.vkey
        assert len(State(state_dir).read_handovers()) == 1
        assert "handed over" in result.summary() and any("handed over" in w for w in warnings)
        # The next run starts from the new key and still verifies the stored chain.
        fake.add(1)
        fake.publish()
        again = verify(log_key=None)
        assert again.keys_followed == [] and again.checkpoint.size == 14

    def test_leaves_before_and_after_the_handover_are_proven(self, fake, verify):
        verify()
        fake.rotate(new_key())
        fake.add(4)
        fake.publish()
        result = verify(leaf_indices=[0, 7, 8, 11], full=True)
        assert [lr.index for lr in result.leaves] == [0, 7, 8, 11] and result.full.size == 12

    def test_first_run_with_a_key_the_register_has_since_handed_over_from(self, fake, verify, state_dir):
        old, new = fake.vkey, new_key()
        fake.rotate(new)
        result = verify(log_key=old)
        assert result.key_newly_pinned and result.keys_followed == [new.vkey]
        assert State(state_dir).read_log_key() == new.vkey

    def test_the_originally_pinned_key_may_still_be_passed(self, fake, verify):
        old = fake.vkey
        verify()
        fake.rotate(new_key())
        verify()
        assert verify(log_key=old).keys_followed == []  # a key the chain holds: no error, nothing new

    def test_two_handovers_in_one_run(self, fake, verify, state_dir):
        verify()
        first, second = new_key("one"), new_key("two")
        fake.rotate(first)
        fake.add(2)
        fake.rotate(second)
        result = verify()
        assert result.keys_followed == [first.vkey, second.vkey]
        assert State(state_dir).read_log_key() == second.vkey

    def test_receipts_by_the_old_key_still_verify(self, fake, verify):
        verify()
        old_receipt = parse_receipt(fake.receipt())
        fake.publish()
        fake.rotate(new_key())
        new_receipt = parse_receipt(fake.receipt())
        fake.publish()
        result = verify(receipts=[old_receipt, new_receipt])
        assert [r.status for r in result.receipts] == ["included", "included"]

    def test_a_receipt_the_old_key_signed_long_after_it_handed_over_is_refused(self, fake, verify):
        old = fake.signer
        verify()
        fake.rotate(new_key())
        fake.clock += 3600
        late = parse_receipt(fake.receipt(signer=old))
        fake.publish()
        with pytest.raises(VerificationError, match="retired log key after it handed over"):
            verify(receipts=[late])


class TestAttacks:
    """Each attack leaves the state dir byte for byte as it was."""

    def test_checkpoint_from_an_unknown_key_without_a_handover(self, fake, verify, state_dir):
        verify()
        before = snapshot(state_dir)
        fake.signer = new_key("attacker")
        fake.add(1)
        fake.publish()
        with pytest.raises(VerificationError, match="not signed by the pinned log key"):
            verify()
        assert snapshot(state_dir) == before

    def test_unknown_key_listed_but_the_handover_signed_by_another_key(self, fake, verify, state_dir):
        verify()
        before = snapshot(state_dir)
        attacker = new_key("attacker")
        fake.rotate(attacker, handover_by=attacker)  # claims to come from the pinned key, signed by another
        with pytest.raises(VerificationError, match="does not verify"):
            verify()
        assert snapshot(state_dir) == before

    def test_handover_not_countersigned_by_the_new_key(self, fake, verify, state_dir):
        verify()
        before = snapshot(state_dir)
        fake.rotate(new_key(), cosigner=new_key("someone else"))
        with pytest.raises(VerificationError, match="does not verify"):
            verify()
        assert snapshot(state_dir) == before

    def test_handover_altered_after_signing(self, fake, verify, state_dir):
        verify()
        before = snapshot(state_dir)
        note = fake.rotate(new_key())
        fake.key_list[-1]["handover"] = note.decode().replace("From-Size: 8\n", "From-Size: 9\n")
        with pytest.raises(VerificationError, match="does not verify"):
            verify()
        assert snapshot(state_dir) == before

    def test_retired_key_cannot_sign_past_its_handover(self, fake, verify):
        old = fake.signer
        verify()
        fake.rotate(new_key())
        verify()
        fake.add(5)
        fake.publish(signer=old)  # e.g. a stolen retired key signing a fork
        with pytest.raises(VerificationError, match="retired log key"):
            verify()


class TestHandoverFormat:
    def test_exact_text_and_two_signatures(self):
        old = NoteSigner(ORIGIN, new_key("a").private_key)
        new = NoteSigner(ORIGIN, new_key("b").private_key)
        note = sign_handover(old, new, from_size=42, timestamp=1700000000)
        body = note[: note.rfind(b"\n\n") + 1]
        assert body == (f"{ORIGIN}/key-handover\nOld-Key: {old.verifier_key()}\nNew-Key: {new.verifier_key()}\n"
                        "From-Size: 42\nTimestamp: 1700000000\n").encode()
        assert note.count("\u2014".encode()) == 2
        handover, verifier = open_handover(old.verifier(), note)
        assert handover == Handover(ORIGIN, old.verifier_key(), new.verifier_key(), 42, 1700000000)
        assert verifier.verifier_key() == new.verifier_key()

    def test_only_the_old_key_can_start_it(self):
        a, b = (NoteSigner(ORIGIN, new_key(t).private_key) for t in "ab")
        note = sign_handover(a, b, from_size=1, timestamp=1)
        with pytest.raises(NoteError):
            open_handover(b.verifier(), note)

    def test_chain_refuses_going_back_to_an_old_key(self):
        a, b = (NoteSigner(ORIGIN, new_key(t).private_key) for t in "ab")
        chain = KeyChain.start(a.verifier())
        chain.follow(sign_handover(a, b, from_size=5, timestamp=1))
        with pytest.raises(NoteError):
            chain.follow(sign_handover(b, a, from_size=6, timestamp=2))
        assert chain.from_sizes == [0, 5] and chain.until_size(0) == 5 and chain.until_size(1) is None

    def test_state_records_the_handovers_as_json(self, fake, verify, state_dir):
        verify()
        note = fake.rotate(new_key())
        verify()
        assert json.loads((state_dir / "handovers.json").read_text()) == [note.decode()]
