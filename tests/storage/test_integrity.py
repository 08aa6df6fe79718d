"""The references the database no longer checks on a report's rows (storage.integrity): the count finds a
row that names what is gone, and the register's own deletions leave none."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import delete, insert

from register.services import retention
from register.storage.integrity import dangling
from register.storage.models import Obligation, ObligationDebtor, ObligationVersion, Person
from register.storage.types import utcnow
from tests.conftest import ADMIN_TOKEN, fresh_app
from tests.factories import debtor, make_institution, make_person, new_ref, obligation_body

ZERO = {"obligations.institution_id": 0, "obligation_debtors.obligation_id": 0, "obligation_debtors.person_id": 0,
        "obligation_versions.obligation_id": 0}


def _line(client, lender, person) -> str:  # noqa: ANN001
    ref = new_ref()
    r = client.put(f"/v1/obligations/{ref}", headers=lender.headers, json=obligation_body(debtors=[debtor(person)]))
    assert r.status_code == 201, r.text
    return ref


def test_a_row_naming_what_is_gone_is_counted(app, client, data_dir):  # noqa: ANN001
    lender = make_institution(client, {"Authorization": f"Bearer {ADMIN_TOKEN}"}, "lender")
    person = make_person(client, data_dir)
    ref = _line(client, lender, person)
    sessions = app.state.register.sessions
    with sessions() as s:
        before = dangling(s)
        ob = s.query(Obligation).filter_by(institution_id=lender.id, external_ref=ref).one()
        pid = s.query(ObligationDebtor.person_id).filter_by(obligation_id=ob.id).scalar()
        # What the database would once have refused, written past the register's own code:
        s.execute(insert(ObligationVersion).values(obligation_id="00000000-0000-4000-8000-00000000dead", version=1,
                                                   change="created", institution_id=lender.id, recorded_at=utcnow(),
                                                   as_of=utcnow(), state={}))
        s.execute(insert(ObligationDebtor).values(obligation_id=ob.id, person_id="00000000-0000-4000-8000-00000000beef",
                                                  role="co_debtor"))
        s.execute(delete(Obligation).where(Obligation.id == ob.id))  # its version and debtor rows stay behind
        found = dangling(s)
        s.rollback()
    assert before == ZERO
    assert found["obligation_versions.obligation_id"] == 2  # its own version 1 and the stray one
    assert found["obligation_debtors.obligation_id"] == 2  # its debtor, and the stray one
    assert found["obligation_debtors.person_id"] == 1
    assert pid is not None
    with sessions() as s:
        assert dangling(s) == ZERO  # rolled back: nothing was left


def test_retention_deletes_a_line_and_forgets_its_person_leaving_nothing_behind(backend, tmp_path, data_dir, keys):  # noqa: ANN001
    with fresh_app(backend, tmp_path, data_dir, keys) as app, TestClient(app, raise_server_exceptions=False) as client:
        lender = make_institution(client, {"Authorization": f"Bearer {ADMIN_TOKEN}"}, "lender")
        person = make_person(client, data_dir)
        ref = _line(client, lender, person)
        body = obligation_body(debtors=[debtor(person)], status="closed", balance=0, as_of="2026-11-20T00:00:00Z")
        assert client.put(f"/v1/obligations/{ref}", headers=lender.headers, json=body).status_code == 200
        state = app.state.register
        later = utcnow() + timedelta(days=3 * 366)
        counts = retention.run(state.sessions, retention.policy_of(state.settings), now=later)
        assert counts is not None
        with state.sessions() as s:
            assert s.query(Obligation).count() == 0
            assert s.query(Person).count() == 0  # forgotten once nothing named them
            assert dangling(s) == ZERO
        assert counts.deleted["ended"] == 1 and counts.deleted["person"] == 1
