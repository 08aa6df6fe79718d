"""Test data factories with keyword overrides. Identity numbers are generated (valid check digits),
never real people's."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from register.domain.identity import generate_national_id

_rng = random.Random(20261123)


def national_id(country: str = "SE") -> str:
    return generate_national_id(country, _rng)


@dataclass
class Inst:
    id: str
    token: str
    role: str
    name: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def make_institution(client: TestClient, admin_headers: dict[str, str], role: str = "lender", **kw: Any) -> Inst:
    name = kw.pop("name", f"{role.title()} {uuid.uuid4().hex[:6]}")
    r = client.post("/v1/institutions", json={"name": name, "role": role, **kw}, headers=admin_headers)
    assert r.status_code == 201, r.text
    doc = r.json()
    return Inst(id=doc["id"], token=doc["token"], role=role, name=name)


def obligation_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "instalment_loan",
        "debtors": [{"country": "SE", "national_id": national_id(), "role": "primary"}],
        "currency": "SEK",
        "original_amount": 10_000_000,
        "balance": 8_500_000,
        "monthly_payment": 250_000,
        "interest_rate_bp": 790,
        "opened_on": "2024-03-01",
        "matures_on": "2029-03-01",
        "status": "current",
        "registration_consent": {"reference": "AGR-1", "given_at": "2024-02-28T10:00:00Z", "method": "e_signature"},
        "as_of": "2026-11-01T00:00:00Z",
    }
    body.update(overrides)
    return body


def new_ref() -> str:
    return f"LOAN-{uuid.uuid4().hex[:10]}"


def consumer_headers(data_dir, country: str, nid: str, *, ttl: int = 600, audience: str = "register") -> dict[str, str]:
    """A consumer signed in through the development identity provider the test app trusts."""
    from register.crypto.dev_idp import DevIdentityProvider

    token = DevIdentityProvider.load_or_create(data_dir).issue(country=country, national_id=nid, audience=audience,
                                                               ttl=ttl)
    return {"Authorization": f"Bearer {token}"}


def in_days(days: float, *, now=None) -> str:
    from datetime import UTC, datetime, timedelta

    return ((now or datetime.now(UTC)) + timedelta(days=days)).isoformat().replace("+00:00", "Z")


def grant(client: TestClient, consumer: dict[str, str], institution_id: str, purpose: str = "credit_application",
          days: float = 30) -> str:
    r = client.post("/v1/consents", json={"institution_id": institution_id, "purpose": purpose,
                                          "expires_at": in_days(days)}, headers=consumer)
    assert r.status_code == 201, r.text
    return r.json()["id"]


@dataclass
class Person:
    country: str
    nid: str
    headers: dict[str, str]


def make_person(client_or_none, data_dir, country: str = "SE") -> Person:
    nid = national_id(country)
    return Person(country=country, nid=nid, headers=consumer_headers(data_dir, country, nid))


def debtor(person: Person, role: str = "primary") -> dict[str, str]:
    return {"country": person.country, "national_id": person.nid, "role": role}


def attest(client: TestClient, inst: Inst, person: Person, *, reference: str | None = None,
           purpose: str = "credit_application", days: float = 28, now=None):
    """An institution records a consent it collected itself; the response (201, a 200 repeat, or a refusal)."""
    import hashlib

    reference = reference or f"APP-{uuid.uuid4().hex[:10]}"
    return client.post("/v1/consents/attested", json={
        "country": person.country, "national_id": person.nid, "purpose": purpose, "expires_at": in_days(days, now=now),
        "evidence": {"method": "signed_application", "reference": reference, "signed_at": "2026-11-20T10:00:00Z",
                     "document_sha256": hashlib.sha256(reference.encode()).hexdigest()}}, headers=inst.headers)
