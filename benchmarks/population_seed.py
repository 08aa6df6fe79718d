"""Load a synthetic population (register seed's path) and give the benchmark lender consents for a
sample of its persons; returns the lender's token and one exposure request body per sampled person."""

from __future__ import annotations

import json
import random
from datetime import timedelta

from register.config import Settings
from register.crypto.fields import FieldCipher
from register.crypto.keys import load_keys
from register.domain.consent import Purpose
from register.domain.identity import parse_national_id
from register.domain.permission import Principal, Role
from register.population import generate
from register.services.consents import attest_consent
from register.services.seed import seed_population
from register.storage.db import make_engine, make_sessionmaker
from register.storage.migrate import upgrade
from register.storage.types import utcnow


def load(url: str, data_dir: str, *, persons: int, sample: int = 20_000, seed: int = 1) -> dict:
    upgrade(url)
    settings = Settings(database_url=url, data_dir=data_dir)
    cipher = FieldCipher(load_keys(settings))
    engine = make_engine(url, pool_size=2)
    sessions = make_sessionmaker(engine)
    result = seed_population(sessions, cipher, persons=persons, seed=seed)
    lender = result.tokens["nordbank"]
    principal = Principal(role=Role.lender, name=lender["name"], institution_id=lender["id"])
    bodies = consented_bodies(sessions, cipher, principal, persons=persons, sample=sample, seed=seed)
    engine.dispose()
    return {"token": lender["token"], "bodies": bodies, "seed_lines": result.lines, "seed_seconds": result.seconds}


def consented_bodies(sessions, cipher, principal: Principal, *, persons: int, sample: int, seed: int,  # noqa: ANN001
                     ref_prefix: str = "") -> list[str]:
    """Attested consents to `principal` for up to `sample` persons with debt from the start of the
    population (persons, seed); one exposure request body per consent."""
    debtors = {d["national_id"] for line in generate(min(persons, sample * 3), seed=seed, ref_prefix=ref_prefix)
               for d in line.doc["debtors"]}
    chosen = random.Random(seed).sample(sorted(debtors), min(sample, len(debtors)))
    now = utcnow()
    bodies = []
    with sessions.begin() as s:
        for nid in chosen:
            consent, _ = attest_consent(
                s, cipher, principal=principal, nid=parse_national_id("SE", nid), purpose=Purpose.credit_application,
                expires_at=now + timedelta(days=80), now=now, request_id=None,
                evidence={"method": "signed_application", "reference": f"bench-{nid}", "signed_at": now.isoformat(),
                          "document_sha256": "0" * 64})  # fmt: skip
            bodies.append(json.dumps({"country": "SE", "national_id": nid, "purpose": "credit_application",
                                      "consent_id": consent.id}))
    return bodies
