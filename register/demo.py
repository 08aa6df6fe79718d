"""Demo data: a handful of institutions and a few hundred synthetic consumers with believable debts.

Everything goes through the same services as the API. Identity numbers are generated with valid check
digits (python-stdnum rules), never real people's. Tokens are kept in `<data_dir>/demo.json` (0600) so
that `make run` can print them again on every start; each start also writes them, with the address it
serves on, to `<data_dir>/demo.env` (0600), for a shell to source (the README's walk-throughs do).
"""

from __future__ import annotations

import itertools
import json
import random
import shlex
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from register.config import Settings, write_private_file
from register.crypto.fields import FieldCipher
from register.domain.identity import generate_national_id, parse_national_id
from register.domain.obligation import ObligationReport
from register.domain.permission import Principal, Role
from register.domain.consent import Purpose
from register.errors import ConsentRequired
from register.services import credit_ban, disputes, identities
from register.services.consents import attest_consent, revoke_consent
from register.services.exposure import lines_for_person, query_exposure
from register.services.institutions import create_institution
from register.services.obligations import report_obligation
from register.services.translog import TransparencyLog

DEMO_INSTITUTIONS = [
    ("nordbank", "Nordbank AB", Role.lender, "556000-0001"),
    ("snabblan", "Snabblån Sverige AB", Role.lender, "556000-0002"),
    ("kortbolaget", "Kortbolaget AB", Role.lender, "556000-0003"),
    ("inkasso", "Trygg Inkasso AB", Role.collector, "556000-0004"),
    ("regulator", "Finansinspektionen (demo)", Role.regulator, "202100-0005"),
]


@dataclass
class DemoInfo:
    institutions: dict[str, dict[str, str]]
    persons: list[str]  # generated demo identity numbers (synthetic), for the walk-through
    applicants: list[str] = field(default_factory=list)  # persons with a consent and a lender's look
    url: str = ""  # where the demo serves, as of its last start

    def to_json(self) -> str:
        return json.dumps({"url": self.url, "institutions": self.institutions, "persons": self.persons,
                           "applicants": self.applicants}, indent=2)

    def to_shell(self) -> str:
        """Shell assignments: R (the address), <KEY>_ID and <KEY>_TOKEN per institution, PERSON_1... ."""
        lines = ["# The demo register for a shell: . <this file>. Written by `register demo` at every start.",
                 "# The tokens work on this demo only; the persons' numbers are synthetic (valid, nobody's).",
                 f"R={shlex.quote(self.url)}"]
        for key, inst in self.institutions.items():
            lines += [f"{key.upper()}_ID={shlex.quote(inst['id'])}",
                      f"{key.upper()}_TOKEN={shlex.quote(inst['token'])}"]
        lines += [f"PERSON_{i}={shlex.quote(nid)}" for i, nid in enumerate(self.persons, start=1)]
        return "\n".join(lines) + "\n"


def demo_file(settings: Settings) -> Path:
    return settings.data_dir / "demo.json"


def shell_file(settings: Settings) -> Path:
    return settings.data_dir / "demo.env"


def load_demo_info(settings: Settings) -> DemoInfo | None:
    path = demo_file(settings)
    if not path.exists():
        return None
    doc = json.loads(path.read_text())
    return DemoInfo(institutions=doc["institutions"], persons=doc["persons"], applicants=doc.get("applicants", []),
                    url=doc.get("url", ""))


def write_demo_files(settings: Settings, info: DemoInfo) -> None:
    """demo.json and demo.env, both 0600 (they hold tokens), with `info.url` as this start's address."""
    settings.ensure_data_dir()
    write_private_file(demo_file(settings), info.to_json() + "\n")
    write_private_file(shell_file(settings), info.to_shell())


def _history(session: Session, cipher: FieldCipher, tlog: TransparencyLog, principals: dict[str, Principal],
             numbers: list[str], rng: random.Random, now: datetime) -> None:
    """Consents and an access history, through the same services as the API. The first ten persons
    (the walk-through's) are left without any, so the README's story starts from nothing."""
    people = numbers[10:]
    evidence = {"method": "signed_application", "reference": "", "signed_at": now.isoformat(),
                "document_sha256": "0" * 64}

    serial = itertools.count(1)

    def attest(lender: str, nid: str, days_ago: int) -> tuple[str, datetime]:
        """The new consent's id and when it was given."""
        at = now - timedelta(days=days_ago, minutes=rng.randrange(600))
        # One reference per application (the register refuses a reference reused for another person).
        reference = f"APP-{rng.randrange(10**6):06d}-{next(serial)}"
        consent, _ = attest_consent(
            session, cipher, principal=principals[lender], nid=parse_national_id("SE", nid, allow_test=True),
            purpose=Purpose.credit_application, expires_at=at + timedelta(days=60), now=at, request_id=None,
            evidence={**evidence, "reference": reference})
        return consent.id, consent.granted_at

    def look(lender: str, nid: str, consent_id: str, at: datetime) -> None:
        try:
            query_exposure(session, cipher, principal=principals[lender], country="SE", national_id=nid,
                           purpose=Purpose.credit_application, consent_id=consent_id, now=at, request_id=None,
                           allow_test_ids=True, tlog=tlog)
        except ConsentRequired:
            pass  # refused, and recorded as refused: part of the history too

    for i, nid in enumerate(people[:60]):  # loan applications: a consent, then the lender looks
        lender = ("nordbank", "snabblan", "kortbolaget")[i % 3]
        consent_id, granted_at = attest(lender, nid, days_ago=rng.randrange(1, 40))
        if i % 4 != 3:  # most applications get as far as the lender's look
            look(lender, nid, consent_id, granted_at + timedelta(minutes=rng.randrange(2, 90)))
        if i % 10 == 9:  # a few people revoke afterwards, as they may at any time
            person = Principal(role=Role.consumer, name="consumer", national_id=parse_national_id("SE", nid, allow_test=True),
                               subject=cipher.blind_index(parse_national_id("SE", nid, allow_test=True).blind_index_input()))
            revoke_consent(session, cipher, principal=person, consent_id=consent_id, now=now, request_id=None)
    for nid in people[60:65]:  # a lender that looks without the person's consent is refused, and it shows
        look("kortbolaget", nid, "00000000-0000-4000-8000-000000000000", now - timedelta(hours=rng.randrange(1, 48)))
    _disputes_and_bans(session, cipher, principals, people[65:80], rng, now)


def _consumer(cipher: FieldCipher, nid: str) -> Principal:
    parsed = parse_national_id("SE", nid, allow_test=True)
    return Principal(role=Role.consumer, name="consumer", national_id=parsed,
                     subject=cipher.blind_index(parsed.blind_index_input()))


def _disputes_and_bans(session: Session, cipher: FieldCipher, principals: dict[str, Principal], people: list[str],
                       rng: random.Random, now: datetime) -> None:
    """Disputes in every state (one past its deadline, for the regulator's view) and credit bans, through
    the same services as the API."""
    by_id = {p.institution_id: p for p in principals.values()}
    texts = {"repaid": "I paid this off in full last month.", "wrong_amount": "The balance is higher than my statement.",
             "not_mine": "I have never had an account with this company.", "wrong_status": "I am not late: I pay every month."}
    i = -1
    for nid in people:
        person = _consumer(cipher, nid)
        found = identities.find_person(session, cipher, person.national_id)
        lines = lines_for_person(session, found.id) if found else []
        if not lines:  # some people owe nothing: nothing to dispute
            continue
        i += 1
        target = lines[0]
        if i < 10:
            reason = list(texts)[i % 4]
            # Opened 7 to 25 days ago: what follows (an answer after 5 days, a statement after 6) is in the past.
            opened = now - timedelta(days=40 if i == 0 else 6 + rng.randrange(1, 20))
            d = disputes.open_dispute(session, cipher, principal=person, obligation_id=target.obligation_id, reason=reason,
                                      text=texts[reason], now=opened, days=30, request_id=None)
            creditor = by_id[target.institution_id]
            if i in (2, 3):
                disputes.answer_dispute(session, cipher, principal=creditor, dispute_id=d.id, outcome="upheld",
                                        explanation="Our records show the payments as reported; the line is correct.",
                                        now=opened + timedelta(days=5), request_id=None)
                if i == 3:
                    disputes.add_statement(session, cipher, principal=person, dispute_id=d.id,
                                           statement="I lost my job in the spring and have agreed a plan with the bank.",
                                           now=opened + timedelta(days=6), request_id=None)
            elif i == 4:
                disputes.answer_dispute(session, cipher, principal=creditor, dispute_id=d.id, outcome="corrected",
                                        explanation="You are right: the payment was booked late. The line is fixed.",
                                        now=opened + timedelta(days=3), request_id=None)
            elif i == 5:
                disputes.withdraw_dispute(session, cipher, principal=person, dispute_id=d.id,
                                          now=opened + timedelta(days=1), request_id=None)
        else:  # a few people ban credit in their own name, one after a stolen identity
            credit_ban.set_ban(session, cipher, principal=person, reason="identity_theft" if i == 10 else "self_control",
                               until=None, now=now - timedelta(days=rng.randrange(1, 30)), request_id=None)


def _report(kind: str, debtors: list[dict[str, str]], as_of: datetime, rng: random.Random, **kw: Any) -> ObligationReport:
    doc: dict[str, Any] = {
        "kind": kind,
        "debtors": debtors,
        "currency": "SEK",
        "status": "current",
        "registration_consent": {"reference": f"AGR-{rng.randrange(10**8):08d}", "given_at": as_of - timedelta(days=400), "method": "e_signature"},
        "as_of": as_of,
    }
    doc.update(kw)
    return ObligationReport.model_validate(doc)


def seed_demo(session: Session, cipher: FieldCipher, settings: Settings, tlog: TransparencyLog, *, persons: int = 300,
              seed: int = 2026) -> DemoInfo:
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    insts: dict[str, dict[str, str]] = {}
    principals: dict[str, Principal] = {}
    for key, name, role, org in DEMO_INSTITUTIONS:
        contact = {"phone": f"+46 8 000 00 {len(insts) + 1:02d}", "email": f"kundservice@{key}.example",
                   "url": f"https://{key}.example/kontakt"}  # fictional: the .example domain is reserved
        inst, token = create_institution(session, name=name, role=role, org_number=org, country="SE", now=now,
                                         contact=contact)
        insts[key] = {"id": inst.id, "name": name, "role": role.value, "token": token}
        principals[key] = Principal(role=role, name=name, institution_id=inst.id)

    numbers = [generate_national_id("SE", rng) for _ in range(persons)]
    n = 0

    def put(lender: str, report: ObligationReport) -> None:
        nonlocal n
        n += 1
        report_obligation(
            session, cipher, principal=principals[lender], external_ref=f"{lender.upper()}-{n:06d}", report=report,
            now=now, allow_test_ids=True,
        )

    def debtor(i: int, role: str = "primary") -> dict[str, str]:
        return {"country": "SE", "national_id": numbers[i], "role": role}

    for i in range(persons):
        as_of = now - timedelta(days=rng.choice([0, 1, 2, 3, 7, 40]))
        opened = date.today() - timedelta(days=rng.randrange(60, 3000))
        if rng.random() < 0.55:  # an unsecured instalment loan
            principal = rng.choice([30_000, 50_000, 100_000, 150_000, 250_000]) * 100
            balance = int(principal * rng.uniform(0.2, 0.95))
            late = rng.random() < 0.12
            put(rng.choice(["nordbank", "snabblan"]), _report(
                "instalment_loan", [debtor(i)], as_of, rng, original_amount=principal, balance=balance,
                monthly_payment=max(50_000, principal // 60), interest_rate_bp=rng.choice([590, 890, 1290, 1990]),
                opened_on=opened, matures_on=opened + timedelta(days=365 * 5),
                status="overdue" if late else "current", overdue_amount=(principal // 60) * 2 if late else 0,
                days_past_due=rng.choice([35, 62, 91]) if late else 0))
        if rng.random() < 0.5:  # a credit card; some unused, some maxed out and late
            limit = rng.choice([10_000, 20_000, 30_000, 50_000]) * 100
            used = rng.choice([0, 0.3, 0.8, 1.0])
            late = used == 1.0 and rng.random() < 0.5
            put("kortbolaget", _report(
                "credit_card", [debtor(i)], as_of, rng, credit_limit=limit, balance=int(limit * used),
                monthly_payment=int(limit * used * 0.03), interest_rate_bp=2290, opened_on=opened,
                status="overdue" if late else "current", overdue_amount=int(limit * 0.06) if late else 0,
                days_past_due=45 if late else 0))
        if i + 1 < persons and i % 10 == 0:  # a joint mortgage, and on some a parent's guarantee
            debtors = [debtor(i), debtor(i + 1, "co_debtor")]
            if i + 2 < persons and i % 20 == 0:
                debtors.append(debtor(i + 2, "guarantor"))
            amount = rng.choice([1_500_000, 2_500_000, 3_200_000]) * 100
            put("nordbank", _report(
                "mortgage", debtors, as_of, rng, original_amount=amount, balance=int(amount * 0.85),
                monthly_payment=amount // 300, interest_rate_bp=389, opened_on=opened,
                matures_on=opened + timedelta(days=365 * 40)))
        if i % 25 == 7:  # a defaulted loan, handed to a collector whose claim collects it (counted once)
            lender_ref_n = n + 1
            put("snabblan", _report(
                "instalment_loan", [debtor(i)], as_of, rng, original_amount=4_000_000, balance=3_600_000,
                monthly_payment=0, status="in_collection", overdue_amount=3_600_000, days_past_due=190,
                opened_on=opened,
                handed_to={"institution_id": insts["inkasso"]["id"], "external_ref": f"INKASSO-{lender_ref_n + 1:06d}"}))
            put("inkasso", _report(
                "collection_claim", [debtor(i)], as_of, rng, original_amount=3_600_000, balance=3_950_000,
                status=rng.choice(["in_collection", "payment_plan"]), overdue_amount=3_950_000, days_past_due=190,
                original_creditor="Snabblån Sverige AB",
                collects={"institution_id": insts["snabblan"]["id"], "external_ref": f"SNABBLAN-{lender_ref_n:06d}"}))
    _history(session, cipher, tlog, principals, numbers, rng, now)
    info = DemoInfo(institutions=insts, persons=numbers[:10], applicants=numbers[10:15])
    write_demo_files(settings, info)
    return info
