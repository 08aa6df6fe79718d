"""The log key: its store (file and environment), its rotation with a signed handover, and the regulator's
verifier following it, on both databases."""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from fastapi.testclient import TestClient

from register.cli_log_key import log_status, rotate_log
from register.crypto.keys import StaticKeys
from register.crypto.log_key import (
    EnvLogKeyStore, FileLogKeyStore, LogKeyStoreError, fingerprint, open_log_key_store, raw_public,
)
from register.main import create_app
from register.services.log_check import verify_log
from register.storage.migrate import upgrade
from register_verifier.handover import KeyChain
from register_verifier.note import Checkpoint, NoteVerifier
from tests.api.test_exposure import query
from tests.conftest import ADMIN_TOKEN, create_pg_database, drop_pg_database, make_settings
from tests.factories import grant, make_institution, make_person


def seed() -> str:
    key = Ed25519PrivateKey.generate()
    return base64.b64encode(key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())).decode()


class TestFileStore:
    def test_first_key_is_made_once_and_kept_private(self, tmp_path):
        store = FileLogKeyStore(tmp_path)
        first = store.initial()
        assert raw_public(store.initial()) == raw_public(first)
        assert stat.S_IMODE(os.stat(tmp_path / "log-key.pem").st_mode) == 0o600

    def test_created_keys_are_found_by_public_key(self, tmp_path):
        store = FileLogKeyStore(tmp_path)
        first, new = store.initial(), store.create()
        path = tmp_path / "log-keys" / f"{fingerprint(raw_public(new))}.pem"
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert raw_public(store.find(raw_public(new))) == raw_public(new)
        assert raw_public(store.find(raw_public(first))) == raw_public(first)
        assert store.find(b"\0" * 32) is None
        assert store.public_keys() == [raw_public(first), raw_public(new)]

    def test_a_damaged_key_file_is_a_clear_error(self, tmp_path):
        (tmp_path / "log-key.pem").write_text("not a key")
        with pytest.raises(LogKeyStoreError, match="cannot read the log key"):
            FileLogKeyStore(tmp_path).initial()


class TestEnvStore:
    def test_several_seeds_first_is_initial(self):
        a, b = seed(), seed()
        store = EnvLogKeyStore(f"{a}, {b}")
        assert len(store.public_keys()) == 2 and raw_public(store.initial()) == store.public_keys()[0]
        assert store.find(store.public_keys()[1]) is not None

    def test_cannot_make_keys(self):
        with pytest.raises(LogKeyStoreError, match="REGISTER_LOG_KEY"):
            EnvLogKeyStore(seed()).create()

    def test_malformed(self):
        with pytest.raises(LogKeyStoreError):
            EnvLogKeyStore("nope")

    def test_settings_choose_the_store(self, tmp_path):
        assert isinstance(open_log_key_store(make_settings("sqlite://", tmp_path, log_key=seed())), EnvLogKeyStore)
        assert isinstance(open_log_key_store(make_settings("sqlite://", tmp_path)), FileLogKeyStore)


@pytest.fixture(params=["sqlite", "postgres"])
def world(request, tmp_path: Path) -> Iterator[dict]:
    url = f"sqlite:///{tmp_path / 'keys.db'}" if request.param == "sqlite" else create_pg_database()
    upgrade(url)
    settings = make_settings(url, tmp_path)
    app = create_app(settings, keys=StaticKeys.generate())
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            lender = make_institution(client, admin, "lender")
            regulator = make_institution(client, admin, "regulator")
            yield {"url": url, "dir": tmp_path, "settings": settings, "app": app, "client": client,
                   "lender": lender, "regulator": regulator}
    finally:
        app.state.register.engine.dispose()
        if request.param == "postgres":
            drop_pg_database(url)


def traffic(w: dict, n: int = 2) -> list[dict]:
    """n exposure queries; their receipts."""
    out = []
    for _ in range(n):
        person = make_person(w["client"], w["dir"])
        r = query(w["client"], w["lender"], person, grant(w["client"], person.headers, w["lender"].id))
        assert r.status_code == 200, r.text
        out.append(r.json())
    return out


def integrate(w: dict) -> None:
    state = w["app"].state.register
    state.tlog.run_once(state.sessions, force_checkpoint=True)


class TestRotation:
    def test_rotate_hands_over_and_publishes_the_handover(self, world, capsys):
        client = world["client"]
        old_vkey = client.get("/v1/audit/log-key").json()["vkey"]
        traffic(world)
        integrate(world)
        before = log_status(world["settings"])
        assert before["active"] == old_vkey.split("+")[1] and before["retiring"] == []

        status = rotate_log(world["settings"])
        assert "handed over" in capsys.readouterr().err
        new_vkey = status["vkey"]
        assert status["active"] == new_vkey.split("+")[1] != before["active"]
        assert status["retiring"] == [before["active"]]
        assert log_status(world["settings"])["active"] == status["active"]

        keys = client.get("/v1/audit/log-keys").json()
        assert keys["active"] == new_vkey and [k["state"] for k in keys["keys"]] == ["retired", "active"]
        assert keys["keys"][0]["handover"] is None
        chain = KeyChain.start(NoteVerifier.from_vkey(old_vkey))
        handover = chain.follow(keys["keys"][1]["handover"].encode())
        assert (handover.new_key, handover.from_size) == (new_vkey, status["from_size"])
        assert client.get("/v1/audit/log-key").json()["vkey"] == new_vkey

        # The serving process picks the new key up from the database: the next checkpoint is the new key's.
        traffic(world)
        integrate(world)
        note = client.get("/v1/audit/checkpoint", headers=world["regulator"].headers).json()["note"].encode()
        cp = Checkpoint.parse_body(NoteVerifier.from_vkey(new_vkey).open(note))
        assert cp.size > status["from_size"]

    def test_operator_check_and_regulator_pass_across_the_handover(self, world):
        from register_verifier.client import RegisterClient
        from register_verifier.state import State
        from register_verifier.verify import parse_receipt, run_verify

        client = world["client"]
        old_vkey = client.get("/v1/audit/log-key").json()["vkey"]
        old_receipts = [parse_receipt(a) for a in traffic(world)]
        integrate(world)
        state = State(world["dir"] / "regulator")

        def regulator(**kw):
            with RegisterClient("http://testserver", world["regulator"].token, transport=client._transport) as c:
                return run_verify(c, state, **kw)

        regulator(log_key=old_vkey, full=True)
        rotate_log(world["settings"])
        new_receipts = [parse_receipt(a) for a in traffic(world)]
        integrate(world)
        result = regulator(full=True, leaf_indices=[0, result_size(world) - 1], receipts=old_receipts + new_receipts)
        assert result.keys_followed and state.read_log_key() == result.keys_followed[-1]
        assert {r.status for r in result.receipts} == {"included"}
        with world["app"].state.register.sessions() as session:
            report = verify_log(session, world["app"].state.register.tlog)
        assert report.ok, report.problems

    def test_operator_check_catches_a_retired_key_signing_past_its_handover(self, world):
        from register.audit.note import NoteSigner
        from register.storage import log as store
        from register.storage.models import LogCheckpoint

        traffic(world, 1)
        integrate(world)
        rotate_log(world["settings"])
        traffic(world, 2)
        integrate(world)
        state = world["app"].state.register
        old = NoteSigner(world["settings"].log_origin, FileLogKeyStore(world["dir"]).initial())
        with state.sessions.begin() as session:  # whoever kept the retired key signs the tree as it is now
            latest = store.latest_checkpoint(session)
            cp = Checkpoint(origin=old.name, size=latest.size, root_hash=latest.root_hash, timestamp=latest.timestamp)
            session.add(LogCheckpoint(size=cp.size, root_hash=cp.root_hash, timestamp=cp.timestamp,
                                      note=old.sign(cp.to_body()).decode()))
        with state.sessions() as session:
            report = verify_log(session, state.tlog)
        assert any("retired log key" in p.what for p in report.problems), report.problems

    def test_twice(self, world):
        first = world["client"].get("/v1/audit/log-key").json()["vkey"]
        rotate_log(world["settings"])
        traffic(world, 1)
        last = rotate_log(world["settings"])
        keys = world["client"].get("/v1/audit/log-keys").json()["keys"]
        assert [k["state"] for k in keys] == ["retired", "retired", "active"] and len(last["retiring"]) == 2
        chain = KeyChain.start(NoteVerifier.from_vkey(first))
        for k in keys[1:]:
            chain.follow(k["handover"].encode())
        assert chain.current.verifier_key() == last["vkey"]

    def test_another_process_follows_without_restart_and_one_without_the_key_refuses(self, world, tmp_path):
        other = create_app(make_settings(world["url"], world["dir"]), keys=StaticKeys.generate())
        stranger = create_app(make_settings(world["url"], tmp_path / "elsewhere"), keys=StaticKeys.generate())
        try:
            rotate_log(world["settings"])
            traffic(world, 1)
            state = other.state.register
            state.tlog.run_once(state.sessions, force_checkpoint=True)
            assert state.tlog.signer.verifier_key() == log_status(world["settings"])["vkey"]
            lost = stranger.state.register  # its key store does not hold the active key
            with pytest.raises(LogKeyStoreError, match="not in this process's key store"):
                lost.tlog.run_once(lost.sessions, force_checkpoint=True)
        finally:
            other.state.register.engine.dispose()
            stranger.state.register.engine.dispose()

    def test_a_process_without_the_active_key_refuses_to_start(self, world, tmp_path):
        rotate_log(world["settings"])
        stranger = create_app(make_settings(world["url"], tmp_path / "elsewhere"), keys=StaticKeys.generate())
        try:
            with pytest.raises(LogKeyStoreError, match="not in this process's key store"):
                with TestClient(stranger, raise_server_exceptions=False):
                    pass
        finally:
            stranger.state.register.engine.dispose()

    def test_a_process_started_after_the_rotation_signs_receipts_with_the_new_key(self, world):
        new_vkey = rotate_log(world["settings"])["vkey"]
        later = create_app(make_settings(world["url"], world["dir"]), keys=StaticKeys.generate())
        try:
            with TestClient(later, raise_server_exceptions=False) as client:  # no integrator thread runs here
                w = {**world, "client": client}
                receipt = traffic(w, 1)[0]["receipt"]
            NoteVerifier.from_vkey(new_vkey).open(receipt["note"].encode())
        finally:
            later.state.register.engine.dispose()

    def test_env_store_hands_over_to_a_listed_seed_only(self, world):
        a, b = seed(), seed()
        one = make_settings(world["url"], world["dir"], log_key=a)
        with pytest.raises(LogKeyStoreError, match="REGISTER_LOG_KEY"):
            rotate_log(one)
        two = make_settings(world["url"], world["dir"], log_key=f"{a},{b}")
        status = rotate_log(two)
        from register.audit.note import NoteSigner

        assert status["vkey"] == NoteSigner(two.log_origin, EnvLogKeyStore(b).initial()).verifier_key()


def result_size(world: dict) -> int:
    return world["client"].get("/v1/audit/checkpoint", headers=world["regulator"].headers).json()["size"]


def test_handover_note_is_json_safe_text(tmp_path):
    # The API carries the note as a string: it must be UTF-8 text (the em dash) that round-trips through JSON.
    from register.audit.note import NoteSigner, sign_handover

    a, b = (NoteSigner("register.local/access-log", Ed25519PrivateKey.generate()) for _ in range(2))
    note = sign_handover(a, b, from_size=3, timestamp=4)
    assert json.loads(json.dumps(note.decode())).encode() == note
