"""Fixtures for the person's pages: people with debts, their signed-in browsers, and a clock to move."""

from __future__ import annotations


import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from register.storage.types import utcnow
from tests.factories import Inst, Person, debtor, make_person, new_ref, obligation_body
from tests.web.pages import Browser, sign_in


@pytest.fixture
def person(client: TestClient, data_dir) -> Person:
    return make_person(client, data_dir)


def report(client: TestClient, inst: Inst, person: Person, ref: str | None = None, **overrides) -> str:
    """A debt of `person` reported by `inst` (as `ref`, else a new one); returns its id."""
    overrides.setdefault("as_of", utcnow().isoformat())
    overrides.setdefault("debtors", [debtor(person)])
    body = obligation_body(**overrides)
    r = client.put(f"/v1/obligations/{ref or new_ref()}", json=body, headers=inst.headers)
    assert r.status_code in (200, 201), r.text
    return r.json()["id"]


@pytest.fixture
def browser(app: FastAPI, client: TestClient, person: Person, lender: Inst) -> Browser:
    """A person with one late debt at `lender`, signed in."""
    report(client, lender, person, status="overdue", overdue_amount=500_000, days_past_due=40)
    return sign_in(app, person)
