"""A signal's evidence with inclusion proofs (`GET /v1/regulator/signals?proofs=true`, SPEC.md "Signals"):
the regulator's own verifier (register_verifier.verify_evidence, which imports nothing of the register)
accepts what the register gives, and refuses it once anything in it is altered."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from random import Random

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from fastapi.testclient import TestClient

from register_verifier import verify_evidence
from register_verifier.note import NoteVerifier
from register_verifier.verify import VerificationError
from tests.conftest import ADMIN_TOKEN, Clock, fresh_app
from tests.factories import make_institution
from tests.test_signals import in_order, look

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def fresh(backend: str, tmp_path: Path, data_dir: Path, keys) -> Iterator[FastAPI]:  # noqa: ANN001
    with fresh_app(backend, tmp_path, data_dir, keys, attested_rate_per_second=0) as app:
        app.state.register.clock = Clock()
        yield app


@pytest.fixture
def client(fresh: FastAPI) -> Iterator[TestClient]:
    with TestClient(fresh, raise_server_exceptions=False) as c:
        yield c


def scan(fresh, client) -> tuple[str, list[str]]:
    """A lender scanning six persons in identity order (five flagged): a sequential_lookups signal."""
    clock = fresh.state.register.clock
    scanner = make_institution(client, ADMIN, "lender")
    birth = f"19{Random().randrange(50, 99)}0{Random().randrange(1, 9)}1{Random().randrange(0, 9)}"
    events = []
    for p in in_order(birth, 200, 6):
        clock.advance(minutes=1)
        events.append(look(client, scanner, p, clock))
    clock.advance(minutes=1)
    return scanner.id, events


def signals_with_proofs(client, regulator) -> dict:
    r = client.get("/v1/regulator/signals", params={"kind": "sequential_lookups", "proofs": "true"},
                   headers=regulator.headers)
    assert r.status_code == 200, r.text
    return r.json()


class TestEvidenceProofs:
    def test_the_regulator_s_verifier_accepts_them_and_refuses_any_alteration(self, fresh, client):
        scanner, events = scan(fresh, client)
        regulator = make_institution(client, ADMIN, "regulator")
        state = fresh.state.register
        state.tlog.run_once(state.sessions, force_checkpoint=True)
        doc = signals_with_proofs(client, regulator)
        [signal] = doc["items"]
        assert signal["institution_id"] == scanner and signal["evidence"] == events[1:]
        assert [p["event_id"] for p in signal["evidence_proofs"]] == events[1:]
        key = NoteVerifier.from_vkey(client.get("/v1/audit/log-key").json()["vkey"])

        cp, leaves = verify_evidence(key, doc["checkpoint"]["note"], signal["evidence_proofs"])
        assert cp.size == doc["checkpoint"]["size"]
        # What the regulator now knows from the log itself, not from the register's answer:
        assert {(x["actor_id"], x["action"], x["details"]["sequential"]) for x in leaves} == {
            (scanner, "exposure:query", True)}

        proofs = signal["evidence_proofs"]
        first = proofs[0]
        leaf = json.loads(base64.b64decode(first["leaf"]))
        altered = [
            {**first, "leaf": base64.b64encode(json.dumps({**leaf, "actor_id": "someone-else"}, sort_keys=True,
                                                          separators=(",", ":")).encode()).decode()},
            {**first, "event_id": proofs[1]["event_id"]},  # a leaf passed off as another event's
            {**first, "leaf": proofs[1]["leaf"]},  # another event's leaf under this one's proof
            {**first, "inclusion": {**first["inclusion"], "proof": list(reversed(first["inclusion"]["proof"]))}},
            {**first, "leaf_index": first["leaf_index"] + 1,
             "inclusion": {**first["inclusion"], "leaf_index": first["leaf_index"] + 1}},
        ]
        for bad in altered:
            with pytest.raises(VerificationError):
                verify_evidence(key, doc["checkpoint"]["note"], [bad, *proofs[1:]])
        note = doc["checkpoint"]["note"]
        with pytest.raises(VerificationError):  # the checkpoint's text altered: its signature fails
            verify_evidence(key, note.replace(str(cp.size), str(cp.size + 1), 1), proofs)
        with pytest.raises(VerificationError):  # another key of the same name (an impostor's log)
            verify_evidence(NoteVerifier(key.name, Ed25519PrivateKey.generate().public_key()), note, proofs)

    def test_events_not_yet_in_a_checkpoint_have_no_proof(self, fresh, client):
        regulator = make_institution(client, ADMIN, "regulator")
        state = fresh.state.register
        state.tlog.run_once(state.sessions, force_checkpoint=True)  # a checkpoint before the scan
        scan(fresh, client)
        doc = signals_with_proofs(client, regulator)
        [signal] = doc["items"]
        assert signal["evidence_proofs"] == [] and doc["checkpoint"] is not None

    def test_without_proofs_the_answer_is_as_before(self, fresh, client):
        scan(fresh, client)
        regulator = make_institution(client, ADMIN, "regulator")
        r = client.get("/v1/regulator/signals", headers=regulator.headers)
        [signal] = r.json()["items"]
        assert signal["evidence_proofs"] is None and r.json()["checkpoint"] is None
