"""Harvesting with attested consents (OWASP API6 of 2023, an outside attacker's finding): a lender attests
consents for identity numbers of its choosing and reads their debts. What stops it, tried for real on
both databases: one evidence reference names one consent (reusing it for another person is 409), and
attested lookups have their own, lower rate and daily quota (429), which never overshoot under
concurrency, while the same lender's lookups with consents people gave themselves still pass."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from register.services.limits import ExposureLimits
from register.storage.models import AccessEvent, Consent
from tests.api.test_exposure import events_for_request, query
from tests.factories import (
    attest, debtor, grant, make_institution, make_person, new_ref, obligation_body,
)
from tests.security.test_limits import answers_for, ticks  # noqa: F401  (the fixture)
from tests.web.pages import sign_in


def set_limits(app, monkeypatch, ticks, *, rate=0.0, burst=1, quota=0, attested_rate=0.0,
               attested_quota=0) -> ExposureLimits:
    limits = ExposureLimits(rate=rate, burst=burst, daily_quota=quota, attested_rate=attested_rate,
                            attested_daily_quota=attested_quota, clock=ticks)
    monkeypatch.setattr(app.state.register, "exposure_limits", limits)
    return limits


def consents_with_reference(app, institution_id: str, reference: str) -> int:
    with app.state.register.sessions() as s:
        rows = s.execute(select(Consent.evidence).where(Consent.institution_id == institution_id)).scalars()
        return sum((e or {}).get("reference") == reference for e in rows)


def attest_events(app, institution_id: str) -> list[tuple[str, str | None]]:
    with app.state.register.sessions() as s:
        rows = s.execute(select(AccessEvent.outcome, AccessEvent.reason).where(
            AccessEvent.actor_id == institution_id, AccessEvent.action == "consent:attest").order_by(AccessEvent.seq))
        return [tuple(r) for r in rows]


def indebted(client, data_dir, lender):
    """A person with a debt at `lender`."""
    person = make_person(client, data_dir)
    r = client.put(f"/v1/obligations/{new_ref()}", json=obligation_body(debtors=[debtor(person)]),
                   headers=lender.headers)
    assert r.status_code == 201, r.text
    return person


class TestReferenceReuse:
    def test_the_same_reference_for_another_person_is_409_and_gives_no_consent(self, app, client, data_dir, lender):
        x, y = indebted(client, data_dir, lender), indebted(client, data_dir, lender)
        first = attest(client, lender, x, reference="APP-1001")
        assert first.status_code == 201, first.text
        r = attest(client, lender, y, reference="APP-1001")
        assert r.status_code == 409 and r.json()["code"] == "reference_reused"
        assert y.nid not in r.text and x.nid not in r.text
        assert consents_with_reference(app, lender.id, "APP-1001") == 1
        # Y gave nothing and has nothing to look at: the consent names X, so a lookup of Y with it is refused.
        assert client.get("/v1/me/consents", headers=y.headers).json()["items"] == []
        looked = query(client, lender, y, first.json()["id"])
        assert looked.status_code == 403 and looked.json()["code"] == "consent_mismatch"
        # The attempt is in Y's own access log, refused.
        (ev,) = events_for_request(app, r.headers["x-request-id"])
        assert (ev.action, ev.outcome, ev.reason, ev.consent_id) == ("consent:attest", "refused", "reference_reused", None)
        log = client.get("/v1/me/access-log", headers=y.headers).json()["items"]
        assert [(e["action"], e["reason"]) for e in log if e["action"] == "consent:attest"] == [
            ("consent:attest", "reference_reused")]
        page = sign_in(app, y).get("/app/who-looked")
        assert page.status_code == 200 and "the application reference belonged to another consent" in page.text

    def test_a_repeat_for_the_same_person_returns_the_first_consent(self, app, client, data_dir, lender):
        x = indebted(client, data_dir, lender)
        first = attest(client, lender, x, reference="APP-2002", days=28)
        again = attest(client, lender, x, reference="APP-2002", days=20)  # a retry built afresh
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json()["id"] == first.json()["id"]
        assert again.json()["expires_at"] == first.json()["expires_at"]  # the first one stands
        assert [c["id"] for c in client.get("/v1/me/consents", headers=x.headers).json()["items"]] == [first.json()["id"]]
        assert attest_events(app, lender.id) == [("ok", None)]
        assert query(client, lender, x, again.json()["id"]).status_code == 200

    def test_a_repeat_does_not_revive_a_revoked_consent(self, client, data_dir, lender):
        x = indebted(client, data_dir, lender)
        cid = attest(client, lender, x, reference="APP-3003").json()["id"]
        assert client.delete(f"/v1/consents/{cid}", headers=x.headers).status_code == 200
        again = attest(client, lender, x, reference="APP-3003")
        assert again.status_code == 200 and again.json()["id"] == cid
        assert again.json()["revoked_at"] is not None and again.json()["active"] is False
        r = query(client, lender, x, cid)
        assert r.status_code == 403 and r.json()["code"] == "consent_revoked"

    def test_the_same_reference_for_another_purpose_is_409(self, client, data_dir, lender):
        x = indebted(client, data_dir, lender)
        assert attest(client, lender, x, reference="APP-4004").status_code == 201
        r = attest(client, lender, x, reference="APP-4004", purpose="credit_limit_review")
        assert r.status_code == 409 and r.json()["code"] == "reference_reused"

    def test_references_are_per_institution(self, client, admin_headers, data_dir, lender):
        other = make_institution(client, admin_headers, "lender")
        x, y = make_person(client, data_dir), make_person(client, data_dir)
        assert attest(client, lender, x, reference="APP-5005").status_code == 201
        assert attest(client, other, y, reference="APP-5005").status_code == 201

    def test_concurrent_reuse_for_many_persons_gives_one_consent(self, app, client, data_dir, lender):
        persons = [make_person(client, data_dir) for _ in range(8)]
        statuses: list[int] = []
        lock = threading.Lock()

        def worker(person) -> None:
            r = attest(client, lender, person, reference="APP-6006")
            with lock:
                statuses.append(r.status_code)

        threads = [threading.Thread(target=worker, args=(p,)) for p in persons]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(statuses) == [201] + [409] * 7
        assert consents_with_reference(app, lender.id, "APP-6006") == 1


class TestAttestedRate:
    def test_over_the_attested_rate_429_while_consent_lookups_pass(self, app, client, data_dir, monkeypatch, ticks,
                                                                  lender):
        x, y = indebted(client, data_dir, lender), indebted(client, data_dir, lender)
        attested = [attest(client, lender, p).json()["id"] for p in (x, y)]
        given = grant(client, x.headers, lender.id)
        set_limits(app, monkeypatch, ticks, attested_rate=1)  # the general rate off: only the attested one bites
        assert query(client, lender, x, attested[0]).status_code == 200
        r = query(client, lender, y, attested[1])
        assert r.status_code == 429 and r.json()["code"] == "attested_rate_limited"
        assert r.headers["retry-after"] == "1" and r.json()["receipt"]["event_id"] and "totals" not in r.text
        (ev,) = events_for_request(app, r.headers["x-request-id"])
        assert (ev.action, ev.outcome, ev.reason) == ("exposure:query", "refused", "attested_rate_limited")
        assert ev.subject is not None  # Y sees the refused try
        assert [query(client, lender, x, given).status_code for _ in range(5)] == [200] * 5
        ticks.now += 1
        assert query(client, lender, y, attested[1]).status_code == 200

    def test_the_general_rate_still_applies_to_attested_lookups(self, app, client, data_dir, monkeypatch, ticks,
                                                                lender):
        x = indebted(client, data_dir, lender)
        cid = attest(client, lender, x).json()["id"]
        set_limits(app, monkeypatch, ticks, rate=1, burst=1, attested_rate=100)
        assert query(client, lender, x, cid).status_code == 200
        r = query(client, lender, x, cid)
        assert r.status_code == 429 and r.json()["code"] == "rate_limited"

    def test_another_institutions_attested_consent_takes_nothing_from_the_bucket(
        self, app, client, admin_headers, data_dir, monkeypatch, ticks, lender
    ):
        """Naming a consent one does not hold is refused as a mismatch and leaves one's attested rate alone."""
        other = make_institution(client, admin_headers, "lender")
        x = indebted(client, data_dir, lender)
        foreign = attest(client, other, x).json()["id"]
        own = attest(client, lender, x).json()["id"]
        set_limits(app, monkeypatch, ticks, attested_rate=1)
        assert query(client, lender, x, foreign).json()["code"] == "consent_mismatch"
        assert query(client, lender, x, own).status_code == 200


class TestAttestedQuota:
    def test_attested_quota_then_429_until_the_next_utc_day_while_consent_lookups_pass(
        self, app, client, data_dir, monkeypatch, ticks, lender
    ):
        persons = [indebted(client, data_dir, lender) for _ in range(3)]
        attested = [attest(client, lender, p).json()["id"] for p in persons]
        given = grant(client, persons[0].headers, lender.id)
        set_limits(app, monkeypatch, ticks, quota=10, attested_quota=2)
        late = datetime.now(UTC).replace(hour=23, minute=59, second=0, microsecond=0)
        monkeypatch.setattr(app.state.register, "clock", lambda: late)
        assert [query(client, lender, p, c).status_code for p, c in zip(persons[:2], attested[:2])] == [200, 200]
        r = query(client, lender, persons[2], attested[2])
        assert r.status_code == 429 and r.json()["code"] == "attested_quota_exceeded"
        assert r.headers["retry-after"] == "60" and r.json()["receipt"]["event_id"]
        (ev,) = events_for_request(app, r.headers["x-request-id"])
        assert (ev.outcome, ev.reason) == ("refused", "attested_quota_exceeded") and ev.subject is not None
        # The same lender's lookups with a consent the person gave are not held back.
        assert [query(client, lender, persons[0], given).status_code for _ in range(3)] == [200] * 3
        assert answers_for(app, lender.id) == 5
        monkeypatch.setattr(app.state.register, "clock", lambda: late + timedelta(minutes=2))
        assert query(client, lender, persons[2], attested[2]).status_code == 200

    def test_a_refusal_by_one_quota_uses_up_neither(self, app, client, data_dir, monkeypatch, ticks, lender):
        """An attested answer counts against both quotas, in one statement; a refused one against none."""
        x = indebted(client, data_dir, lender)
        cid = attest(client, lender, x).json()["id"]
        given = grant(client, x.headers, lender.id)
        set_limits(app, monkeypatch, ticks, quota=3, attested_quota=1)
        assert query(client, lender, x, cid).status_code == 200
        for _ in range(3):
            assert query(client, lender, x, cid).json()["code"] == "attested_quota_exceeded"
        assert [query(client, lender, x, given).status_code for _ in range(2)] == [200, 200]
        r = query(client, lender, x, given)
        assert r.status_code == 429 and r.json()["code"] == "quota_exceeded"
        # With the general quota used up, an attested lookup is told so (not the attested code).
        assert query(client, lender, x, cid).json()["code"] == "quota_exceeded"
        assert answers_for(app, lender.id) == 3

    def test_attested_answers_count_against_the_general_quota(self, app, client, data_dir, monkeypatch, ticks,
                                                              lender):
        x = indebted(client, data_dir, lender)
        cid = attest(client, lender, x).json()["id"]
        given = grant(client, x.headers, lender.id)
        set_limits(app, monkeypatch, ticks, quota=2, attested_quota=100)
        assert [query(client, lender, x, cid).status_code for _ in range(2)] == [200, 200]
        assert query(client, lender, x, given).json()["code"] == "quota_exceeded"

    def test_concurrent_attested_lookups_never_overshoot(self, app, client, data_dir, monkeypatch, ticks, lender):
        x = indebted(client, data_dir, lender)
        cid = attest(client, lender, x).json()["id"]
        given = grant(client, x.headers, lender.id)
        set_limits(app, monkeypatch, ticks, quota=100, attested_quota=4)
        statuses: list[tuple[int, str | None]] = []
        lock = threading.Lock()

        def worker() -> None:
            for _ in range(3):
                r = query(client, lender, x, cid)
                with lock:
                    statuses.append((r.status_code, r.json().get("code")))

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(statuses, key=str) == [(200, None)] * 4 + [(429, "attested_quota_exceeded")] * 8
        assert answers_for(app, lender.id) == 4
        assert query(client, lender, x, given).status_code == 200  # 4 of 100 used: people's own consents pass
        with app.state.register.sessions() as s:
            refused = s.execute(select(func.count()).select_from(AccessEvent).where(
                AccessEvent.actor_id == lender.id, AccessEvent.reason == "attested_quota_exceeded")).scalar_one()
        assert refused == 8


class TestDefaults:
    def test_the_attested_limits_are_on_and_much_lower_than_the_general_ones(self, app):
        settings = app.state.register.settings
        limits = app.state.register.exposure_limits
        assert (settings.attested_rate_per_second, settings.attested_daily_quota, settings.follow_up_days) == (20, 2000, 30)
        assert limits.attested_buckets.rate == 20 and limits.attested_buckets.burst == 20
        assert limits.attested_daily_quota == 2000
        assert limits.attested_daily_quota * 10 <= limits.daily_quota and limits.attested_buckets.rate * 10 <= limits.buckets.rate
