"""The notice address under the retention rules, on a database of its own per test (a run deletes across
the register): an address never confirmed goes when its link expires; a confirmed one stays while the
person is known, and goes in the run that forgets them. The person sees it among what the register keeps."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from register.storage.notice_tables import NotificationSubscription
from register.storage.types import utcnow
from tests.factories import debtor, make_person, new_ref
from tests.storage.test_retention import client, close, fresh, lender, plan, put, run  # noqa: F401 - fixtures


def subscribe(client, person, email="kept@example.org"):  # noqa: ANN001, ANN201, F811
    r = client.put("/v1/me/notifications", json={"email": email}, headers=person.headers)
    assert r.status_code == 200, r.text


def addresses(app) -> int:  # noqa: ANN001
    with app.state.register.sessions() as s:
        return int(s.execute(select(func.count()).select_from(NotificationSubscription)).scalar_one())


def confirm_all(app) -> None:  # noqa: ANN001
    with app.state.register.sessions.begin() as s:
        s.execute(update(NotificationSubscription).values(confirmed_at=utcnow(), token_hash=None,
                                                          token_expires_at=None))


class TestAddressRetention:
    def test_an_unconfirmed_address_goes_when_its_link_expires(self, fresh, client, data_dir):  # noqa: F811
        person = make_person(client, data_dir)
        subscribe(client, person)
        now = utcnow()
        assert plan(fresh, now + timedelta(days=1))["notice_address"] == 0
        assert run(fresh, now + timedelta(days=1))["notice_address"] == 0 and addresses(fresh) == 1
        assert plan(fresh, now + timedelta(days=8))["notice_address"] == 1
        assert run(fresh, now + timedelta(days=8))["notice_address"] == 1 and addresses(fresh) == 0

    def test_a_confirmed_address_goes_with_the_person(self, fresh, client, lender, data_dir):  # noqa: F811
        person = make_person(client, data_dir)
        ref = new_ref()
        put(client, lender, ref, debtors=[debtor(person)])
        subscribe(client, person)
        confirm_all(fresh)
        now = utcnow()
        assert run(fresh, now + timedelta(days=30))["notice_address"] == 0 and addresses(fresh) == 1
        close(client, lender, ref, person)
        later = now + timedelta(days=400)
        # the person's events pass their period only after five years: they are forgotten with their debt
        counts = run(fresh, later)
        assert counts["person"] == 1 and counts["notice_address"] == 1 and addresses(fresh) == 0

    def test_the_person_sees_the_address_among_what_we_keep(self, fresh, client, data_dir):  # noqa: F811
        person = make_person(client, data_dir)
        subscribe(client, person, "seen@example.org")
        doc = client.get("/v1/me/retention", headers=person.headers).json()
        assert doc["notifications"]["email"] == "seen@example.org"
        assert doc["notifications"]["confirmed"] is False and doc["notifications"]["kept_until"] is not None
        page = client.get("/v1/me/retention", headers=person.headers)
        assert page.status_code == 200
