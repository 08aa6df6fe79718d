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
