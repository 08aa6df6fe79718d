"""The batch path prepares a line's state JSON in another process, in pieces around what only the database
knows (person ids, a stored as_of): put together, the pieces must be byte for byte the canonical JSON a
single report hashes, or a repeated line would look changed."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from register.canonical import canonical_json
from register.crypto.fields import FieldCipher
from register.crypto.keys import StaticKeys
from register.services.bulk import state_json
from register.services.lines import Debtor, LineError, Ready, from_wire, parse_doc, prepare, to_wire
from register.services.obligations import state_of_fields
from tests.factories import national_id, obligation_body

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _ready(**overrides) -> Ready:
    doc = {**obligation_body(as_of="2026-11-10T00:00:00Z"), "external_ref": "R-1", **overrides}
    parsed = parse_doc(1, json.dumps(doc).encode(), now=NOW, allow_test=False)
    assert not hasattr(parsed, "code"), parsed
    return prepare(parsed, FieldCipher(StaticKeys.generate()))


@pytest.mark.parametrize("overrides", [
    {},
    {"original_creditor": 'He said "debtors":[] and left', "kind": "collection_claim"},
    {"original_creditor": "Ünïcødé \\ back\\slash \u2028"},
    {"handed_to": {"institution_id": "b7d5c3e0-0000-4000-8000-000000000001", "external_ref": "debtors:x"}},
    {"as_of": "2026-11-10T01:02:03.456789+01:00"},
])  # fmt: skip
def test_the_pieces_make_the_canonical_state(overrides):
    ready = _ready(**overrides)
    debtors = [("c0ffee00-0000-4000-8000-000000000002", "co_debtor"), ("0badf00d-0000-4000-8000-000000000001", "primary")]
    for as_of in (ready.fields["as_of"], ready.fields["as_of"] - timedelta(days=3)):
        expected = canonical_json(state_of_fields({**ready.fields, "as_of": as_of}, debtors))
        assert state_json(ready, as_of, debtors) == expected


def test_a_prepared_line_crosses_a_process_boundary():
    import pickle

    cipher = FieldCipher(StaticKeys.generate())
    nid = national_id()
    doc = {**obligation_body(debtors=[{"country": "SE", "national_id": nid, "role": "primary"}]), "external_ref": "R-2"}
    ready = prepare(parse_doc(1, json.dumps(doc).encode(), now=NOW, allow_test=False), cipher)
    again = pickle.loads(pickle.dumps(cipher))
    assert again.blind_index(b"x") == cipher.blind_index(b"x")
    d = ready.debtors[0]
    assert d.blind_index == again.blind_index(f"SE:{d.number}".encode()) and d.number == nid.replace("-", "")
    assert d.number not in repr(ready) and d.number not in repr(d)  # a line shown anywhere never shows it
    assert pickle.loads(pickle.dumps(ready)) == ready
    # What a preparing process sends: plain tuples only (nothing pickled through a Python call), made Ready again.
    error = LineError(2, "validation_error", "kind: wrong", "R-3")
    two = prepare(parse_doc(3, json.dumps({**obligation_body(debtors=[
        {"country": "SE", "national_id": nid, "role": "primary"},
        {"country": "SE", "national_id": national_id(), "role": "co_debtor"}]), "external_ref": "R-4"}).encode(),
        now=NOW, allow_test=False), cipher)  # fmt: skip
    sent = pickle.dumps(to_wire([(1, ready), (2, error), (3, two), (4, None)]))
    assert b"Ready" not in sent and b"Debtor" not in sent
    back = from_wire(pickle.loads(sent))
    assert back == [(1, ready), (2, error), (3, two), (4, None)]
    assert type(back[0][1]) is Ready and {type(d) for _, r in (back[0], back[2]) for d in r.debtors} == {Debtor}
    assert back[2][1].debtors[1].role == "co_debtor" and back[2][1].fields == two.fields


def test_only_a_person_new_to_the_register_gets_a_row_encrypted_for_it(app, lender):
    """The ciphertext of a person's identity number is made as its row is added, bound to that row's id, and
    only then: a line naming a known person adds no row."""
    from sqlalchemy import func, select

    from register.domain.permission import Role
    from register.services.bulk import apply_batch
    from register.storage.models import Person
    from tests.factories import new_ref

    state = app.state.register
    nid = national_id()

    def report() -> None:
        doc = {**obligation_body(debtors=[{"country": "SE", "national_id": nid, "role": "primary"}]),
               "external_ref": new_ref()}
        ready = prepare(parse_doc(1, json.dumps(doc).encode(), now=NOW, allow_test=False), state.cipher)
        with state.sessions.begin() as s:
            apply_batch(s, state.cipher, institution_id=lender.id, role=Role.lender, lines=[ready], now=NOW, source="t")

    report()
    with state.sessions() as s:
        person = s.execute(select(Person).where(Person.blind_index == state.cipher.blind_index(
            f"SE:{nid.replace('-', '')}".encode()))).scalar_one()
        count = s.execute(select(func.count()).select_from(Person)).scalar_one()
    number = state.cipher.decrypt(person.national_id_enc, table="persons", column="national_id_enc", row_id=person.id)
    assert number == nid.replace("-", "").encode()
    report()
    with state.sessions() as s:
        assert s.execute(select(func.count()).select_from(Person)).scalar_one() == count



def test_the_preparing_processes_import_neither_the_database_layer_nor_the_web():
    """Each server process's fork server imports services.lines, not the register: it starts as its first large
    report is claimed, and the whole register's import (0.8-1.9 s of a core) was CPU taken from that report
    (BENCHMARKS.md, ingest, tenth round). Imported in a fresh interpreter, the module brings none of it (that the
    fork server preloads it: tests/api/test_reports.py)."""
    import subprocess
    import sys

    heavy = ["sqlalchemy", "psycopg", "fastapi", "starlette", "httpx", "pydantic_settings", "register_verifier",
             "register.storage", "register.config", "register.crypto.keys", "register.services.bulk"]
    code = f"import sys, register.services.lines; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr

def test_array_literals_read_back_as_the_values(database_url, backend):
    """The batch lookups on PostgreSQL send their keys as array literals built by hand (psycopg's list
    dumper cost more than the rest of a line's writing); odd characters must survive."""
    if backend != "postgres":
        pytest.skip("PostgreSQL's array literals")
    import psycopg
    from sqlalchemy import make_url

    from register.storage.dialects.postgres import _bytea_array, _text_array

    texts = ["a", 'b"c', "d\\e", "x,y", "{z}", " sp ", "NULL", "ü"]
    blobs = [b"\x00\x01", bytes(range(32)), b"", b"\\\""]
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT %s::text[]", (_text_array(texts),)).fetchone()[0] == texts
        assert [bytes(b) for b in conn.execute("SELECT %s::bytea[]", (_bytea_array(blobs),)).fetchone()[0]] == blobs
