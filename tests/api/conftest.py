"""Fixtures for the API tests: a fresh institution of each role per test."""

from __future__ import annotations

import pytest

from tests.factories import Inst, make_institution


@pytest.fixture
def lender(client, admin_headers) -> Inst:
    return make_institution(client, admin_headers, "lender")


@pytest.fixture
def regulator(client, admin_headers) -> Inst:
    return make_institution(client, admin_headers, "regulator")
