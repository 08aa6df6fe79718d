"""A small population through the services (the reporting path), with a consent for the benchmark
lender on every person: enough for latency benchmarks that need granted exposure queries."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

from register.config import Settings
from register.crypto.fields import FieldCipher
from register.crypto.keys import load_keys
from register.domain.consent import Purpose
from register.domain.identity import generate_national_id, parse_national_id
from register.domain.obligation import ObligationReport
from register.domain.permission import Principal, Role
from register.services.consents import attest_consent
from register.services.institutions import create_institution
from register.services.obligations import report_obligation
from register.storage.db import make_engine, make_sessionmaker
from register.storage.migrate import upgrade


def seed(database_url: str, data_dir: str, persons: int, *, seed: int = 7) -> tuple[str, list[str]]:
    """Returns the lender's token and one exposure request body (JSON) per person."""
    upgrade(database_url)
    settings = Settings(database_url=database_url, data_dir=data_dir)
    cipher = FieldCipher(load_keys(settings))
    engine = make_engine(database_url)
    rng = random.Random(seed)
    now = datetime.now(UTC)
    bodies: list[str] = []
    with make_sessionmaker(engine).begin() as s:
        lender, token = create_institution(s, name="Bench Bank", role=Role.lender, org_number=None, country="SE", now=now)
        other, _ = create_institution(s, name="Other Bank", role=Role.lender, org_number=None, country="SE", now=now)
    principals = [Principal(role=Role.lender, name="Bench Bank", institution_id=lender.id),
                  Principal(role=Role.lender, name="Other Bank", institution_id=other.id)]
    sessions = make_sessionmaker(engine)
    for start in range(0, persons, 500):
        with sessions.begin() as s:
            for i in range(start, min(start + 500, persons)):
                nid = generate_national_id("SE", rng)
                for k in range(rng.choice([1, 2, 3])):
                    report = ObligationReport.model_validate({
                        "kind": rng.choice(["instalment_loan", "credit_card", "mortgage"]), "currency": "SEK",
                        "debtors": [{"country": "SE", "national_id": nid, "role": "primary"}],
                        "balance": rng.randrange(0, 10**8), "credit_limit": 5 * 10**6, "monthly_payment": 10**5,
                        "status": "current", "as_of": now,
                        "registration_consent": {"reference": "R", "given_at": now, "method": "e_signature"},
                    })  # fmt: skip
                    report_obligation(s, cipher, principal=rng.choice(principals), external_ref=f"B-{i}-{k}",
                                      report=report, now=now, allow_test_ids=False)
                consent, _ = attest_consent(
                    s, cipher, principal=principals[0], nid=parse_national_id("SE", nid),
                    purpose=Purpose.credit_application, expires_at=now + timedelta(days=80),
                    evidence={"method": "signed_application", "reference": f"A-{i}", "signed_at": now.isoformat(),
                              "document_sha256": "0" * 64}, now=now, request_id=None)  # fmt: skip
                bodies.append(json.dumps({"country": "SE", "national_id": nid, "purpose": "credit_application",
                                          "consent_id": consent.id}))
    engine.dispose()
    return token, bodies
