"""The key lifecycle (SPEC.md section 8): fingerprints recorded on first start, a start with other or missing keys
refused, field and blind-index rotations (resumable), `register keys`. Every test on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import sessionmaker

from register.crypto.fields import FieldCipher
from register.crypto.log_key import FileLogKeyStore, raw_public
from register.crypto.keys import EnvKeyProvider, FileKeyProvider, KeyKind, KeyProviderError
from register.main import create_app
from register.services import identities
from register.services import keys as key_service
from register.services.keys import KeysRefused
from register.domain.identity import parse_national_id
from register.storage import pseudonyms
from register.storage.models import Person
from register.storage.types import utcnow
from tests.conftest import ADMIN_TOKEN, drop_pg_database, make_settings
from tests.factories import consumer_headers, make_institution, national_id, new_ref, obligation_body
from tests.server import fresh_database

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def url(backend: str, tmp_path: Path) -> Iterator[str]:
    database = fresh_database(backend, tmp_path)
    yield database
    if backend == "postgres":
        drop_pg_database(database)


def report_people(url: str, data_dir: Path, n: int = 5) -> list[str]:
    """Start an app on these keys and report one debt each for `n` new persons; their numbers."""
    app = create_app(make_settings(url, data_dir))
    nids = []
    with TestClient(app, raise_server_exceptions=False) as client:
        lender = make_institution(client, ADMIN)
        for _ in range(n):
            nid = national_id()
            body = obligation_body(debtors=[{"country": "SE", "national_id": nid, "role": "primary"}])
            r = client.put(f"/v1/obligations/{new_ref()}", json=body, headers=lender.headers)
            assert r.status_code == 201, r.text
            nids.append(nid)
    app.state.register.engine.dispose()
    return nids


def sessions_for(url: str) -> sessionmaker:
    return sessionmaker(create_engine(url), expire_on_commit=False)


def quiet(step: str, done: int, total: int) -> None:
    pass


class TestFingerprints:
    def test_first_start_creates_keys_and_records_fingerprints_not_keys(self, url, tmp_path):
        report_people(url, tmp_path, 1)
        doc = json.loads((tmp_path / "keys.json").read_text())
        with sessions_for(url)() as session:
            rows = session.execute(text("SELECT kind, version, state, fingerprint FROM key_versions")).all()
            dump = repr(session.execute(text("SELECT * FROM key_versions")).all())
        assert {(r.kind, r.version, r.state) for r in rows} == {("fields", 1, "active"), ("blind-index", 1, "active")}
        for key in (*doc["encryption_keys"].values(), *doc["blind_index_keys"].values()):
            assert key not in dump and base64.b64decode(key).hex() not in dump

    def test_a_missing_key_file_once_data_exists_refuses_to_start(self, url, tmp_path):
        report_people(url, tmp_path, 1)
        (tmp_path / "keys.json").unlink()
        with pytest.raises(KeysRefused, match="key file .* is missing"):
            create_app(make_settings(url, tmp_path))
        assert not (tmp_path / "keys.json").exists()  # no new key file made to serve with

    def test_a_second_host_with_other_keys_refuses_to_start(self, url, tmp_path):
        report_people(url, tmp_path / "host-a", 1)
        (tmp_path / "host-b").mkdir()
        FileKeyProvider(tmp_path / "host-b" / "keys.json").create()  # keys of its own, made elsewhere
        with pytest.raises(KeysRefused, match="not the one the database recorded"):
            create_app(make_settings(url, tmp_path / "host-b"))
        with pytest.raises(KeysRefused, match="is missing"):
            create_app(make_settings(url, tmp_path / "host-c"))  # no keys at all: none are made

    def test_register_serve_refuses_before_starting_workers(self, url, tmp_path):
        from register.server import prepare_workers

        report_people(url, tmp_path / "host-a", 1)
        with pytest.raises(KeysRefused, match="is missing"):
            prepare_workers(make_settings(url, tmp_path / "host-b"))

    def test_environment_keys_that_differ_refuse(self, url, tmp_path):
        report_people(url, tmp_path, 1)
        other = base64.b64encode(b"\x05" * 32).decode()
        settings = make_settings(url, tmp_path, encryption_keys=json.dumps({"1": other}), blind_index_key=other)
        with pytest.raises(KeysRefused, match="key version 1 is not the one"):
            create_app(settings)

    def test_the_same_keys_from_the_environment_start(self, url, tmp_path):
        report_people(url, tmp_path, 1)
        doc = json.loads((tmp_path / "keys.json").read_text())
        settings = make_settings(url, tmp_path / "env-host", encryption_keys=json.dumps(doc["encryption_keys"]),
                                 blind_index_keys=json.dumps(doc["blind_index_keys"]))
        create_app(settings).state.register.engine.dispose()


def all_readable(url: str, data_dir: Path, nids: list[str]) -> None:
    """A freshly started app (the provider's keys, checked) finds every person by number and decrypts them."""
    app = create_app(make_settings(url, data_dir))
    cipher = app.state.register.cipher
    with app.state.register.sessions() as session:
        for nid in nids:
            person = identities.find_person(session, cipher, parse_national_id("SE", nid))
            assert person is not None and identities.reveal(cipher, person) == parse_national_id("SE", nid)
    app.state.register.engine.dispose()


class TestFieldRotation:
    def test_everything_is_reencrypted_and_the_old_key_destroyed(self, url, tmp_path):
        nids = report_people(url, tmp_path)
        provider = FileKeyProvider(tmp_path / "keys.json")
        result = key_service.rotate_fields(sessions_for(url), provider, progress=quiet, grace=0, batch=2)
        assert result["active"] == 2 and result["destroyed"] == [1]
        assert sorted(provider.load().enc) == [2]
        with sessions_for(url)() as session:
            assert {bytes(b)[1] for b in session.execute(select(Person.national_id_enc)).scalars()} == {2}
            assert key_service.status(session)["fields"] | {"fingerprints": None} == {
                "active": 2, "retiring": [], "pending": [], "fingerprints": None}
        all_readable(url, tmp_path, nids)

    def test_an_interrupted_rotation_resumed_leaves_no_row_unreadable(self, url, tmp_path):
        nids = report_people(url, tmp_path, 6)
        provider = FileKeyProvider(tmp_path / "keys.json")

        def crash(step: str, done: int, total: int) -> None:
            if done >= 2:
                raise KeyboardInterrupt  # as a ^C between two batches

        with pytest.raises(KeyboardInterrupt):
            key_service.rotate_fields(sessions_for(url), provider, progress=crash, grace=0, batch=2)
        with sessions_for(url)() as session:
            assert key_service.status(session)["fields"]["retiring"] == [1]  # half done: both keys live
        all_readable(url, tmp_path, nids)
        result = key_service.rotate_fields(sessions_for(url), provider, progress=quiet, grace=0, batch=2)
        assert result["active"] == 2 and result["destroyed"] == [1]  # resumed, not a third key
        all_readable(url, tmp_path, nids)


class TestBlindIndexRotation:
    def test_every_person_is_found_at_every_step_by_old_and_new_processes(self, url, tmp_path):
        nids = report_people(url, tmp_path)
        provider = FileKeyProvider(tmp_path / "keys.json")
        sessions = sessions_for(url)
        seen: list[str] = []

        def check(step: str, done: int, total: int) -> None:
            """At each step, a process that has followed the versions and one still on the keys it started
            with both find every person (the dual lookup)."""
            if total:
                return
            seen.append(step)
            with sessions() as session:
                followed = key_service.plan_of(session, provider.load()).cipher(provider.load())
                for cipher in (followed, stale):
                    if cipher is stale and "destroyed" in step:
                        continue  # a process on the destroyed key is past its grace: none is left
                    for nid in nids:
                        assert identities.find_person(session, cipher, parse_national_id("SE", nid)), (step, cipher)

        with sessions() as session:
            stale = key_service.plan_of(session, provider.load()).cipher(provider.load())
        result = key_service.rotate_blind_index(sessions, provider, progress=check, grace=0, batch=2)
        assert result == {"kind": "blind-index", "active": 2, "destroyed": [1]}
        assert len(seen) >= 4
        with sessions() as session:
            assert session.execute(select(Person).where(Person.blind_index_next.is_not(None))).first() is None
            old = FieldCipher(stale.keys)
            for nid in nids:  # nobody can be found under the destroyed key any more
                assert identities.find_person(session, old, parse_national_id("SE", nid)) is None
        assert sorted(provider.load().blind_versions) == [2]
        all_readable(url, tmp_path, nids)

    def test_a_persons_own_access_log_survives_the_rotation(self, url, tmp_path):
        """The reports about a person (events linked through pseudonyms keyed by the old index) are still
        theirs to see after the old key is destroyed, with a month that gained a pseudonym under the new
        key while the rotation ran (as a process on the new key recording a look then would)."""
        [nid] = report_people(url, tmp_path, 1)
        provider = FileKeyProvider(tmp_path / "keys.json")
        sessions = sessions_for(url)
        number = parse_national_id("SE", nid)

        def during(step: str, done: int, total: int) -> None:
            if not total and "active" in step:
                with sessions.begin() as session:
                    cipher = key_service.plan_of(session, provider.load()).cipher(provider.load())
                    pseudonyms.pseudonym_at(session, identities.blind_indexes(cipher, number)[0], utcnow())

        key_service.rotate_blind_index(sessions, provider, progress=during, grace=0)
        app = create_app(make_settings(url, tmp_path))
        with TestClient(app, raise_server_exceptions=False) as client:
            r = client.get("/v1/me/access-log", headers=consumer_headers(tmp_path, "SE", nid))
            assert r.status_code == 200, r.text
            assert [e["action"] for e in r.json()["items"]] == ["obligation:created"]
        app.state.register.engine.dispose()
        with sessions() as session:
            cipher = key_service.plan_of(session, provider.load()).cipher(provider.load())
            [new] = identities.blind_indexes(cipher, number)
            assert len(pseudonyms.pseudonyms_for(session, new)) == 2, "the month's old pseudonym and the new one"

    def test_possible_blind_indexes_follow_the_rotation(self, url, tmp_path):
        nids = report_people(url, tmp_path, 1)
        provider = FileKeyProvider(tmp_path / "keys.json")
        sessions = sessions_for(url)
        nid = parse_national_id("SE", nids[0])
        counts = []

        def during(step: str, done: int, total: int) -> None:
            if not total:
                with sessions() as session:
                    cipher = key_service.plan_of(session, provider.load()).cipher(provider.load())
                counts.append(len(identities.blind_indexes(cipher, nid)))

        key_service.rotate_blind_index(sessions, provider, progress=during, grace=0)
        assert counts[0] == 2 and counts[-1] == 1  # both keys' values during the change, then only the new


class TestKeySource:
    def test_one_setting_plugs_in_every_kind_of_key(self, url, tmp_path):
        """REGISTER_KEY_SOURCE names the module a KMS would be: the field, blind-index and log keys all come
        from it, and nothing is made in the data dir."""
        from tests import key_source_plugin

        app = create_app(make_settings(url, tmp_path, key_source="tests.key_source_plugin:source"))
        with TestClient(app, raise_server_exceptions=False) as client:
            lender = make_institution(client, ADMIN)
            body = obligation_body(debtors=[{"country": "SE", "national_id": national_id(), "role": "primary"}])
            assert client.put(f"/v1/obligations/{new_ref()}", json=body, headers=lender.headers).status_code == 201
            vkey = client.get("/v1/audit/log-key").json()["vkey"]
        app.state.register.engine.dispose()
        vault = tmp_path / "vault"
        assert key_source_plugin.CALLS and (vault / "keys.json").exists() and (vault / "log-key.pem").exists()
        assert not (tmp_path / "keys.json").exists() and not (tmp_path / "log-key.pem").exists()
        # The log key it serves is the vault's (the vkey's last part is base64 of a type byte and the key; base64
        # may itself hold "+", so the key is split off once from the left, after name and key hash).
        served = base64.b64decode(vkey.split("+", 2)[2])[1:]
        assert served == raw_public(FileLogKeyStore(vault).initial())
        # The same database without the source: other keys, refused (fingerprints recorded on first start).
        with pytest.raises(KeysRefused):
            create_app(make_settings(url, tmp_path / "elsewhere"))

    @pytest.mark.parametrize("value", ["tests.key_source_plugin:missing", "no.such.module:source",
                                       "tests.key_source_plugin:not_a_source"])
    def test_a_source_that_cannot_be_loaded_stops_the_start(self, url, tmp_path, value):
        with pytest.raises(KeyProviderError, match="REGISTER_KEY_SOURCE"):
            create_app(make_settings(url, tmp_path, key_source=value))


class TestEnvironmentProvider:
    def test_env_keys_cannot_be_added_by_the_register(self, tmp_path):
        from register.config import Settings
        from register.crypto.keys import KeyProviderError

        key = base64.b64encode(b"\x01" * 32).decode()
        provider = EnvKeyProvider(Settings(data_dir=tmp_path, encryption_keys=json.dumps({"1": key}),
                                           blind_index_key=key))
        with pytest.raises(KeyProviderError, match="REGISTER_ENCRYPTION_KEYS"):
            provider.add_version(KeyKind.fields)
        more = json.dumps({"1": key, "2": base64.b64encode(b"\x02" * 32).decode()})
        provider = EnvKeyProvider(Settings(data_dir=tmp_path, encryption_keys=more, blind_index_keys=more))
        assert provider.add_version(KeyKind.blind_index) == 2  # the one the operator added
        assert sorted(provider.load().blind_versions) == [1, 2]


class TestCommands:
    def test_seed_refuses_keys_that_are_not_the_databases(self, url, tmp_path):
        """`register seed` takes its keys as the server does: with the key file gone it refuses, plainly,
        instead of making new keys and writing persons nobody could find again."""
        import subprocess
        import sys

        from tests.server import ROOT, environment

        report_people(url, tmp_path, 1)
        (tmp_path / "keys.json").unlink()
        seed = subprocess.run([sys.executable, "-m", "register.cli", "seed", "--persons", "3"], cwd=ROOT,
                              env=environment(url, tmp_path), capture_output=True, text=True, timeout=120)
        assert seed.returncode == 2, seed.stderr
        assert seed.stderr.startswith("register: the key file") and "Traceback" not in seed.stderr
        assert not (tmp_path / "keys.json").exists()

    def test_register_keys_rotate_prints_progress_and_status_prints_versions(self, url, tmp_path):
        import subprocess
        import sys

        from tests.server import ROOT, environment

        report_people(url, tmp_path, 3)
        env = environment(url, tmp_path, REGISTER_KEY_REFRESH_SECONDS="0.1")

        def register(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([sys.executable, "-m", "register.cli", "keys", *args], env=env, cwd=ROOT,
                                  capture_output=True, text=True, timeout=120)

        done = register("rotate", "--kind", "fields", "--grace", "0")
        assert done.returncode == 0, done.stderr
        assert "re-encrypting persons" in done.stderr and json.loads(done.stdout)["active"] == 2
        status = register("status")
        doc = json.loads(status.stdout)
        assert (doc["fields"]["active"], doc["fields"]["retiring"]) == (2, [])
        assert (doc["blind-index"]["active"], doc["blind-index"]["retiring"]) == (1, [])
        (tmp_path / "keys.json").unlink()
        refused = register("rotate", "--kind", "blind-index")
        assert refused.returncode == 2 and "missing" in refused.stderr
