"""The register's data for the browser tests, set up over HTTP exactly as institutions and people do it:
the operator adds a lender, the lender reports debts, the person (through the development identity
provider) gives consents, disputes and sets a credit ban; the lender asks for exposure and answers."""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from register.domain.identity import generate_national_id
from tests import server
from tests.factories import consumer_headers, in_days, obligation_body

_rng = random.Random(20261124)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def now_minus(**kw: float) -> str:
    return iso(datetime.now(UTC) - timedelta(**kw))


@dataclass
class Institution:
    id: str
    name: str
    headers: dict[str, str]


@dataclass
class Person:
    country: str
    nid: str
    headers: dict[str, str] = field(repr=False)


@dataclass
class Register:
    """A served register (one per database) and its HTTP API."""

    url: str
    backend: str
    database_url: str
    data_dir: Path

    def client(self, headers: dict[str, str] | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def call(self, method: str, path: str, headers: dict[str, str], *, expect: int | None = None, **kw) -> Any:
        with self.client(headers) as c:
            r = c.request(method, path, **kw)
        if expect is not None:
            assert r.status_code == expect, f"{method} {path}: {r.status_code} {r.text}"
        return r

    def institution(self, role: str = "lender", *, name: str | None = None, contact: dict | None = None) -> Institution:
        name = name or f"{role.title()} {uuid.uuid4().hex[:6]}"
        body = {"name": name, "role": role, **({"contact": contact} if contact else {})}
        doc = self.call("POST", "/v1/institutions", server.ADMIN, json=body, expect=201).json()
        return Institution(id=doc["id"], name=name, headers={"Authorization": f"Bearer {doc['token']}"})

    def person(self, country: str = "SE", *, nid: str | None = None) -> Person:
        nid = nid or generate_national_id(country, _rng)
        return Person(country=country, nid=nid, headers=consumer_headers(self.data_dir, country, nid, ttl=3600))

    def report(self, inst: Institution, person: Person, *, ref: str | None = None, role: str = "primary",
               **overrides: Any) -> str:
        """A debt of `person` reported by `inst`; returns the line's id."""
        overrides.setdefault("as_of", now_minus(hours=1))
        overrides.setdefault("debtors", [{"country": person.country, "national_id": person.nid, "role": role}])
        ref = ref or f"LOAN-{uuid.uuid4().hex[:10]}"
        r = self.call("PUT", f"/v1/obligations/{ref}", inst.headers, json=obligation_body(**overrides))
        assert r.status_code in (200, 201), r.text
        return r.json()["id"]

    def consent(self, person: Person, inst: Institution, purpose: str = "credit_application", days: float = 30) -> str:
        body = {"institution_id": inst.id, "purpose": purpose, "expires_at": in_days(days)}
        return self.call("POST", "/v1/consents", person.headers, json=body, expect=201).json()["id"]

    def exposure(self, inst: Institution, person: Person, consent_id: str) -> httpx.Response:
        return self.call("POST", "/v1/exposure", inst.headers, json={
            "country": person.country, "national_id": person.nid, "purpose": "credit_application",
            "consent_id": consent_id})  # fmt: skip

    def my(self, person: Person, what: str) -> Any:
        return self.call("GET", f"/v1/me/{what}", person.headers, expect=200).json()

    def dispute(self, person: Person, line_id: str, reason: str = "wrong_amount", text: str = "It is wrong.") -> str:
        body = {"obligation": line_id, "reason": reason, "text": text}
        return self.call("POST", "/v1/me/disputes", person.headers, json=body, expect=201).json()["id"]

    def answer(self, inst: Institution, dispute_id: str, outcome: str, explanation: str) -> dict:
        return self.call("POST", f"/v1/disputes/{dispute_id}/answer", inst.headers,
                         json={"outcome": outcome, "explanation": explanation}, expect=200).json()

    def wait_for_proofs(self, person: Person, timeout: float = 30) -> list[dict]:
        """The person's access events so far, once each is in a signed checkpoint. The server's integrator
        does that in the background; this polls its API (nothing in the browser to wait on). Reading the
        log is itself logged, so only the events present at the start are waited for."""
        events = self.my(person, "access-log")["items"]
        deadline = time.monotonic() + timeout
        with self.client(person.headers) as c:
            pending = list(events)
            while pending:
                pending = [e for e in pending if c.get(f"/v1/me/access-log/{e['id']}/proof").status_code != 200]
                assert time.monotonic() < deadline, f"{len(pending)} events not in a checkpoint after {timeout}s"
                if pending:
                    time.sleep(0.2)
        return events


@dataclass
class Story:
    """A person with something of everything: a lender with contact details that reported a current loan
    and a late one, a collector's claim on the late one, an active and a revoked consent, a granted and
    a refused look."""

    person: Person
    lender: Institution
    collector: Institution
    loan: str
    late: str
    claim: str
    consent: str
    revoked: str


def story(reg: Register, *, person: Person | None = None, lender_name: str | None = None,
          collector_name: str | None = None) -> Story:
    person = person or reg.person()
    lender = reg.institution(name=lender_name or f"Nordbank {uuid.uuid4().hex[:4]}", contact={
        "phone": "+46 8 123 456 00", "email": "kundtjanst@nordbank.example", "url": "https://nordbank.example"})
    collector = reg.institution("collector", name=collector_name or f"Inkasso {uuid.uuid4().hex[:4]}",
                                contact={"phone": "+46 8 555 000 00"})
    loan = reg.report(lender, person, ref="LOAN-HOME", balance=5_000_000, monthly_payment=150_000)
    # The lender names the collector's claim as the card's holder (handed_to): only then does the claim
    # count the card once.
    late = reg.report(lender, person, ref="CARD-1", kind="credit_card", original_amount=None, matures_on=None,
                      balance=1_230_000, credit_limit=2_000_000, monthly_payment=60_000, status="overdue",
                      overdue_amount=120_000, days_past_due=45,
                      handed_to={"institution_id": collector.id, "external_ref": "CLAIM-1"})
    claim = reg.report(collector, person, ref="CLAIM-1", kind="collection_claim", status="in_collection",
                       balance=2_200_000, monthly_payment=80_000, original_amount=None, matures_on=None,
                       overdue_amount=2_200_000, collects={"institution_id": lender.id, "external_ref": "CARD-1"})
    consent = reg.consent(person, lender)
    assert reg.exposure(lender, person, consent).status_code == 200
    revoked = reg.consent(person, lender, purpose="credit_limit_review")
    reg.call("DELETE", f"/v1/consents/{revoked}", person.headers, expect=200)
    assert reg.exposure(lender, person, revoked).status_code == 403  # a refused look, with its reason
    return Story(person=person, lender=lender, collector=collector, loan=loan, late=late, claim=claim,
                 consent=consent, revoked=revoked)
