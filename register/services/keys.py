"""The key lifecycle: the start-up check against the recorded fingerprints, processes following a rotation
while they run, and the rotations themselves (SPEC.md section 8, "Key lifecycle").

States are recorded in `key_versions`; key material only ever comes from the provider (crypto.keys). A
rotation is a sequence of recorded steps, each safe to repeat, so an interrupted one is resumed by running
it again. Between steps that change what processes do, it waits `grace` (twice the processes' refresh
interval and a second): by then every running process has reread the versions and swapped its keys.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from register.crypto.fields import DecryptionError, FieldCipher
from register.crypto.keys import (
    FileKeyProvider, KeyKind, KeyProvider, KeyProviderError, KeyState, StaticKeys, fingerprint, provider_for,
)
from register.config import Settings
from register.domain.identity import parse_national_id
from register.storage import keys as store
from register.storage import notifications as notice_store
from register.storage import pseudonyms
from register.storage.db import again_on_conflict, make_engine, make_sessionmaker
from register.storage.types import utcnow

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]  # (step, done, total)
LIVE = (KeyState.pending, KeyState.active, KeyState.retiring)


class KeysRefused(RuntimeError):
    """The keys at hand are not the ones the database's data is under: the process must not start."""


@dataclass(frozen=True)
class KeyPlan:
    """Which versions are in use, as the database records them."""

    fields_active: int
    blind_active: int
    blind_live: tuple[int, ...]  # other live blind-index versions (pending or retiring): dual lookup

    def cipher(self, keys: StaticKeys) -> FieldCipher:
        return FieldCipher(keys, current=self.fields_active, blind_active=self.blind_active, blind_live=self.blind_live)

    def apply(self, cipher: FieldCipher, keys: StaticKeys) -> None:
        cipher.use(keys, current=self.fields_active, blind_active=self.blind_active, blind_live=self.blind_live)


def plan_of(session: Session, keys: StaticKeys) -> KeyPlan:
    rows = store.key_versions(session) if store.has_key_table(session) else []
    active = {r.kind: r.version for r in rows if r.state == KeyState.active}
    other = tuple(r.version for r in rows if r.kind == KeyKind.blind_index
                  and r.state in (KeyState.pending, KeyState.retiring))
    return KeyPlan(fields_active=active.get(KeyKind.fields, keys.current_encryption_version()),
                   blind_active=active.get(KeyKind.blind_index, max(keys.blind_versions)), blind_live=other)


def _verify_sample(session: Session, keys: StaticKeys) -> None:
    """Before any fingerprint is on record (a database older than key_versions): a person must decrypt and
    be found under these keys' blind index, or these are not the keys the data is under."""
    person = store.sample_person(session)
    if person is None:
        return
    cipher = FieldCipher(keys)
    try:
        number = cipher.decrypt(person.national_id_enc, table="persons", column="national_id_enc",
                                row_id=person.id).decode()
    except DecryptionError:
        raise KeysRefused("the database holds data encrypted under other keys than the key provider's "
                          "(keys.json missing or replaced, or other REGISTER_ENCRYPTION_KEYS): restore the "
                          "keys the data was written with; refusing to start") from None
    nid = parse_national_id(person.country, number, allow_test=True)
    if person.blind_index not in cipher.blind_indexes(nid.blind_index_input()):
        raise KeysRefused("the blind-index key is not the one the database's persons are indexed under: "
                          "restore it; refusing to start")


def check_keys(session: Session, keys: StaticKeys) -> KeyPlan:
    """Compare the keys at hand with the fingerprints on record; record them on first start. Raises
    KeysRefused, naming the version, when a recorded live key is missing or different."""
    if not store.has_key_table(session):
        _verify_sample(session, keys)
        return plan_of(session, keys)
    rows = store.key_versions(session)
    if not rows:
        _verify_sample(session, keys)
        now = utcnow()
        try:
            with session.begin_nested():  # two processes' first starts at once: the loser checks the winner's
                for kind in KeyKind:
                    versions = keys.versions(kind)
                    active = keys.current_encryption_version() if kind == KeyKind.fields else max(versions)
                    for v, k in sorted(versions.items()):
                        state = KeyState.active if v == active else KeyState.retiring
                        store.add_key_version(session, kind=kind, version=v, state=state,
                                              fingerprint=fingerprint(kind, v, k), now=now)
            return plan_of(session, keys)
        except IntegrityError:
            rows = store.key_versions(session)
    for row in rows:
        if row.state not in LIVE:
            continue
        have = keys.versions(row.kind).get(row.version)
        if have is None:
            raise KeysRefused(f"the database records {row.kind} key version {row.version} ({row.state}, "
                              f"fingerprint {row.fingerprint[:16]}…) but the key provider has no such key "
                              "(keys.json missing or replaced, or the environment lacks it): restore it; "
                              "refusing to start")
        if fingerprint(row.kind, row.version, have) != row.fingerprint:
            raise KeysRefused(f"the key provider's {row.kind} key version {row.version} is not the one the "
                              f"database recorded (fingerprint {row.fingerprint[:16]}…): another host's or an "
                              "old key file; use the keys every host shares; refusing to start")
    return plan_of(session, keys)


def open_cipher(settings: Settings, sessions: sessionmaker[Session]) -> tuple[FieldCipher, KeyProvider]:
    """The provider's keys, checked against the database, as a cipher using the recorded versions. A key
    file is created only when the database holds neither fingerprints nor data (the first start)."""
    provider = provider_for(settings)
    with sessions.begin() as session:
        if isinstance(provider, FileKeyProvider) and not provider.exists():
            recorded = store.has_key_table(session) and bool(store.key_versions(session))
            if recorded or store.any_encrypted_data(session):
                raise KeysRefused(f"the key file {provider.path} is missing but the database holds data under "
                                  "keys: restore the key file (or set REGISTER_ENCRYPTION_KEYS and "
                                  "REGISTER_BLIND_INDEX_KEY); refusing to start")
            provider.create()
        keys = provider.load()
        plan = check_keys(session, keys)
    return plan.cipher(keys), provider


def operator_sessions(settings: Settings) -> sessionmaker[Session]:
    """Sessions for an operator command (`register keys`)."""
    return make_sessionmaker(make_engine(settings.resolved_database_url))


def check_start_keys(settings: Settings) -> None:
    """`open_cipher` on its own engine: what `register serve` runs once before it starts its workers."""
    engine = make_engine(settings.resolved_database_url)
    try:
        open_cipher(settings, make_sessionmaker(engine))
    finally:
        engine.dispose()


class KeyWatcher:
    """A server process's thread that rereads the key versions every `interval` seconds and, when a
    rotation has moved on, reloads the provider's keys and swaps them into the running cipher (no restart)."""

    def __init__(self, sessions: sessionmaker[Session], provider: KeyProvider, cipher: FieldCipher,
                 interval: float) -> None:
        self.sessions, self.provider, self.cipher, self.interval = sessions, provider, cipher, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._epoch: tuple | None = None

    def refresh(self) -> bool:
        with self.sessions() as session:
            if not store.has_key_table(session):
                return False
            epoch = store.key_epoch(session)
            if epoch == self._epoch:
                return False
            keys = self.provider.load()
            plan = check_keys(session, keys)
            session.commit()
        plan.apply(self.cipher, keys)
        self._epoch = epoch
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - keep the current keys and try again next time
                log.exception("rereading the key versions failed; keeping the keys in use")

    def start(self) -> None:
        try:
            self.refresh()
        except Exception:  # noqa: BLE001
            log.exception("reading the key versions failed")
        self._thread = threading.Thread(target=self._run, name="key-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def status(session: Session) -> dict[str, dict]:
    """Each kind's active and retiring (and pending) versions, as `register keys status` prints them."""
    out: dict[str, dict] = {}
    for kind in KeyKind:
        rows = [r for r in store.key_versions(session) if r.kind == kind]
        active = next((r.version for r in rows if r.state == KeyState.active), None)
        out[kind.value] = {"active": active,
                           "retiring": [r.version for r in rows if r.state == KeyState.retiring],
                           "pending": [r.version for r in rows if r.state == KeyState.pending],
                           "fingerprints": {str(r.version): r.fingerprint for r in rows if r.state in LIVE}}
    return out


def _set(sessions: sessionmaker[Session], changes: list[tuple[str, int, str]]) -> None:
    with sessions.begin() as session:
        for kind, version, state in changes:
            store.set_key_state(session, kind=kind, version=version, state=state, now=utcnow())


def _new_version(sessions: sessionmaker[Session], provider: KeyProvider, kind: str, state: str) -> int:
    """A new version from the provider, recorded. A version the provider already holds that the database
    does not know (an earlier run stopped between the two) is used instead of making another."""
    with sessions.begin() as session:
        recorded = {r.version for r in store.key_versions(session) if r.kind == kind}
        have = provider.load().versions(kind)
        unrecorded = [v for v in have if v not in recorded and v > max(recorded, default=0)]
        version = max(unrecorded) if unrecorded else provider.add_version(kind)
        key = provider.load().versions(kind)[version]
        store.add_key_version(session, kind=kind, version=version, state=state,
                              fingerprint=fingerprint(kind, version, key), now=utcnow())
    return version


def _rows(sessions: sessionmaker[Session], kind: str) -> list:
    with sessions() as session:
        return [r for r in store.key_versions(session) if r.kind == kind]


def rotate_fields(sessions: sessionmaker[Session], provider: KeyProvider, *, progress: Progress,
                  grace: float, batch: int = 500) -> dict:
    """Add a field key, re-encrypt every encrypted column under it in batches, retire the old versions."""
    rows = _rows(sessions, KeyKind.fields)
    if not any(r.state == KeyState.retiring for r in rows):
        old = [r.version for r in rows if r.state == KeyState.active]
        new = _new_version(sessions, provider, KeyKind.fields, KeyState.pending)
        _set(sessions, [(KeyKind.fields, new, KeyState.active)] + [(KeyKind.fields, v, KeyState.retiring) for v in old])
        progress("new key active; waiting for every process to use it", 0, 0)
        time.sleep(grace)  # after this no process encrypts under an old version
    rows = _rows(sessions, KeyKind.fields)
    new = next(r.version for r in rows if r.state == KeyState.active)
    retiring = [r.version for r in rows if r.state == KeyState.retiring]
    cipher = FieldCipher(provider.load(), current=new)
    rewritten = 0
    for spec in store.ENCRYPTED:
        with sessions() as session:
            total = store.count_rows(session, spec)
        done, after = 0, None
        while True:
            with sessions.begin() as session:
                found = store.encrypted_batch(session, spec, after=after, limit=batch)
                for row in found:
                    key = tuple(row[: len(spec.keys)])
                    for column, blob in zip(spec.columns, row[len(spec.keys):], strict=True):
                        if blob is None or bytes(blob)[1] == new:
                            continue
                        rid = spec.row_id(key)
                        plain = cipher.decrypt(bytes(blob), table=spec.table, column=column, row_id=rid)
                        fresh = cipher.encrypt(plain, table=spec.table, column=column, row_id=rid)
                        rewritten += store.replace_ciphertext(session, spec, key=key, column=column, old=bytes(blob),
                                                              new=fresh)
            if not found:
                break
            after = tuple(found[-1][: len(spec.keys)])
            done += len(found)
            progress(f"re-encrypting {spec.table}", done, total)
    _set(sessions, [(KeyKind.fields, v, KeyState.destroyed) for v in retiring])
    for v in retiring:
        _destroy(provider, KeyKind.fields, v)
    progress("old keys retired", 0, 0)
    return {"kind": KeyKind.fields.value, "active": new, "destroyed": retiring, "rewritten": rewritten}


def _destroy(provider: KeyProvider, kind: str, version: int) -> None:
    try:
        provider.destroy_version(kind, version)
    except KeyProviderError as exc:  # e.g. the only key: leave it, the database says destroyed
        log.warning("%s", exc)


def _nid_input(cipher: FieldCipher, row) -> bytes:
    number = cipher.decrypt(bytes(row.national_id_enc), table="persons", column="national_id_enc", row_id=row.id)
    return parse_national_id(row.country, number.decode(), allow_test=True).blind_index_input()


def _each_person(sessions: sessionmaker[Session], step: str, batch: int, progress: Progress,
                 fix: Callable[[Session, object], None]) -> None:
    with sessions() as session:
        total = store.count_rows(session, store.ENCRYPTED[0])

    def one_batch(session: Session, after: str | None) -> list:
        found = store.persons_batch(session, after=after, limit=batch)
        for row in found:
            fix(session, row)
        return found

    done, after = 0, None
    while True:
        # Again from the batch's start if a request under the new key made a row the batch moves onto (a month's
        # pseudonym, a choice of notices) after the batch looked: it sees that row the second time.
        found = again_on_conflict(sessions, lambda session: one_batch(session, after))
        if not found:
            return
        after, done = found[-1].id, done + len(found)
        progress(step, done, total)


def rotate_blind_index(sessions: sessionmaker[Session], provider: KeyProvider, *, progress: Progress,
                       grace: float, batch: int = 500) -> dict:
    """Add a blind-index key and index every person under it too (lookups match either: dual lookup);
    switch to it; rewrite every person's and web session's index; destroy the old key."""
    kind = KeyKind.blind_index
    rows = _rows(sessions, kind)
    if not any(r.state in (KeyState.pending, KeyState.retiring) for r in rows):
        _new_version(sessions, provider, kind, KeyState.pending)
        progress("new key pending; waiting for every process to index under both", 0, 0)
        time.sleep(grace)
    rows = _rows(sessions, kind)
    cipher = FieldCipher(provider.load())
    pending = [r.version for r in rows if r.state == KeyState.pending]
    if pending:
        new = pending[0]
        old = next(r.version for r in rows if r.state == KeyState.active)

        def add_next(session: Session, row) -> None:
            value = cipher.blind_index_with(new, _nid_input(cipher, row))
            if value not in (row.blind_index, row.blind_index_next):
                store.set_person_indexes(session, person_id=row.id, old=row.blind_index, blind_index=row.blind_index,
                                         blind_index_next=value)

        _each_person(sessions, "indexing persons under the new key", batch, progress, add_next)
        _set(sessions, [(kind, new, KeyState.active), (kind, old, KeyState.retiring)])
        progress("new key active, old key retiring; waiting for every process to switch", 0, 0)
        time.sleep(grace)
    rows = _rows(sessions, kind)
    new = next(r.version for r in rows if r.state == KeyState.active)
    retiring = [r.version for r in rows if r.state == KeyState.retiring]

    def rewrite(session: Session, row) -> None:
        data = _nid_input(cipher, row)
        value = cipher.blind_index_with(new, data)
        if row.blind_index != value:
            if store.set_person_indexes(session, person_id=row.id, old=row.blind_index, blind_index=value,
                                        blind_index_next=row.blind_index):
                # The person's access events follow them: their pseudonyms move to the new index in the
                # same transaction (else the person's own log would lose them with the old key).
                pseudonyms.rekey(session, row.blind_index, value)
                notice_store.rekey(session, row.blind_index, value)  # and their choice of notices

    _each_person(sessions, "rewriting persons' index", batch, progress, rewrite)
    after = None
    while True:
        with sessions.begin() as session:
            found = store.web_sessions_batch(session, after=after, limit=batch)
            for row in found:
                number = cipher.decrypt(bytes(row.national_id_enc), table="web_sessions", column="national_id_enc",
                                        row_id=row.token_hash).decode()
                data = parse_national_id(row.country, number, allow_test=True).blind_index_input()
                value = cipher.blind_index_with(new, data)
                if bytes(row.subject) != value:
                    store.set_web_session_subject(session, token_hash=row.token_hash, old=bytes(row.subject),
                                                  subject=value)
        if not found:
            break
        after = found[-1].token_hash
    _set(sessions, [(kind, v, KeyState.destroyed) for v in retiring])
    progress("old key destroyed in the register; waiting for every process to forget it", 0, 0)
    time.sleep(grace)
    _each_person(sessions, "rewriting persons' index", batch, progress, rewrite)  # any a slow process added
    while True:
        with sessions.begin() as session:
            if not store.clear_next(session, limit=batch):
                break
    for v in retiring:
        _destroy(provider, kind, v)
    progress("old key destroyed", 0, 0)
    return {"kind": kind.value, "active": new, "destroyed": retiring}
