"""One institution's report never lowers what another institution reported (SPEC section 8, "Collection
links").

The attack, as found: a lender (not even a collector) reports a zero-balance `collection_claim` whose
`collects` names another creditor's line; that line stopped counting, and every lender's exposure for the
person, and the person's own view, dropped by the whole debt. Here it is tried from every role (lender,
collector, regulator, admin) and through every way in (a single PUT, and batch files in NDJSON and CSV).
After each attempt nothing a user would notice may drop: the totals of two lenders' exposure answers, of
`/v1/me/obligations` and of the person's overview page. Only the original creditor's own `handed_to`
confirms a link, and only then is the debt counted once, at the claim's amount.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass

import pytest

from register.services.reports import ReportWorker
from tests.factories import Inst, Person, debtor, grant, make_institution, make_person, new_ref, obligation_body
from tests.web.pages import sign_in

LOAN = 4_000_000  # the victim line's balance: what the attack took out of every total
ROLES = ["lender", "collector", "regulator", "admin"]
CHANNELS = ["put", "ndjson", "csv"]


@dataclass
class World:
    creditor: Inst  # the original creditor: its loan is the target
    loan_ref: str
    askers: list[tuple[Inst, str]]  # lenders holding the person's consent, with its id
    person: Person
    by_role: dict[str, dict[str, str]]  # role -> the attacker's headers


@pytest.fixture
def world(client, admin_headers, data_dir) -> World:
    creditor = make_institution(client, admin_headers, "lender")
    person = make_person(client, data_dir)
    loan_ref = new_ref()
    r = client.put(f"/v1/obligations/{loan_ref}", headers=creditor.headers, json=obligation_body(
        debtors=[debtor(person)], balance=LOAN, monthly_payment=0, status="in_collection", overdue_amount=LOAN,
        days_past_due=120))
    assert r.status_code == 201, r.text
    other = make_institution(client, admin_headers, "lender")
    askers = [(inst, grant(client, person.headers, inst.id)) for inst in (creditor, other)]
    by_role = {role: make_institution(client, admin_headers, role).headers for role in ("lender", "collector",
                                                                                       "regulator")}
    by_role["admin"] = admin_headers
    return World(creditor, loan_ref, askers, person, by_role)


def what_users_see(app, client, w: World) -> dict[str, object]:
    """Every total shown for the person: each asking lender's exposure, the person's own answer, and the
    sentence on their overview page."""
    seen: dict[str, object] = {}
    for inst, consent in w.askers:
        r = client.post("/v1/exposure", headers=inst.headers, json={
            "country": w.person.country, "national_id": w.person.nid, "purpose": "credit_application",
            "consent_id": consent})
        assert r.status_code == 200, r.text
        seen[f"exposure:{inst.name}"] = r.json()["totals"]
    r = client.get("/v1/me/obligations", headers=w.person.headers)
    assert r.status_code == 200, r.text
    seen["me"] = r.json()["totals"]
    page = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", sign_in(app, w.person).get("/app/").text))
    owed = re.search(r"You owe SEK\s*([0-9,]+(?:\.[0-9]+)?)\s+to", page)
    assert owed, "the overview states what is owed"
    seen["page"] = {"SEK": {"balance": round(float(owed.group(1).replace(",", "")) * 100)}}
    return seen


def assert_nothing_dropped(before: dict[str, object], after: dict[str, object]) -> None:
    for where, totals in before.items():
        for currency, figures in totals.items():  # type: ignore[attr-defined]
            for name, value in figures.items():
                now = after[where].get(currency, {}).get(name, 0)  # type: ignore[attr-defined]
                assert now >= value, f"{where} {currency} {name} dropped from {value} to {now}"


def claim_body(w: World, creditor_id: str | None = None) -> dict:
    return obligation_body(
        kind="collection_claim", debtors=[debtor(w.person)], balance=0, monthly_payment=None, original_amount=None,
        matures_on=None, status="in_collection", original_creditor="The victim's bank",
        collects={"institution_id": creditor_id or w.creditor.id, "external_ref": w.loan_ref})


def process(app) -> None:
    state = app.state.register
    ReportWorker(state.sessions, state.cipher, allow_test=False).run_pending()


def csv_of(ref: str, body: dict) -> str:
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(["external_ref", "kind", "currency", "balance", "status", "original_creditor",
                  "collects_institution_id", "collects_external_ref", "debtors", "registration_consent_reference",
                  "registration_consent_given_at", "registration_consent_method", "as_of"])
    d = body["debtors"][0]
    rc = body["registration_consent"]
    out.writerow([ref, body["kind"], body["currency"], body["balance"], body["status"], body["original_creditor"],
                  body["collects"]["institution_id"], body["collects"]["external_ref"],
                  f"{d['country']}:{d['national_id']}:{d['role']}", rc["reference"], rc["given_at"], rc["method"],
                  body["as_of"]])
    return buf.getvalue()


def attempt(app, client, headers: dict[str, str], channel: str, ref: str, body: dict):
    """Report the claim through `channel`: (status, code) of the PUT or upload, and for a processed file the
    code of its one rejected line (None when the line was accepted)."""
    if channel == "put":
        r = client.put(f"/v1/obligations/{ref}", json=body, headers=headers)
        return r.status_code, r.json().get("code"), None
    if channel == "ndjson":
        content, kind = json.dumps({**body, "external_ref": ref}) + "\n", "application/x-ndjson"
    else:
        content, kind = csv_of(ref, body), "text/csv"
    r = client.post("/v1/reports", content=content.encode(), headers={**headers, "Content-Type": kind})
    if r.status_code != 202:
        return r.status_code, r.json().get("code"), None
    process(app)
    report = client.get(f"/v1/reports/{r.json()['id']}", headers=headers).json()
    assert report["status"] == "done", report
    errors = [json.loads(x) for x in client.get(f"/v1/reports/{r.json()['id']}/errors", headers=headers).text.splitlines()]
    assert report["accepted"] + report["rejected"] == 1, (report, errors)
    return r.status_code, None, errors[0]["code"] if errors else None


# What each role gets: (status of the request, its code, the code of the file's rejected line).
EXPECTED = {
    ("lender", "put"): (403, "collector_only", None),
    ("lender", "ndjson"): (202, None, "collector_only"),
    ("lender", "csv"): (202, None, "collector_only"),
    ("collector", "put"): (201, None, None),  # accepted, but unconfirmed: both lines count
    ("collector", "ndjson"): (202, None, None),
    ("collector", "csv"): (202, None, None),
    **{(role, ch): (403, "forbidden", None) for role in ("regulator", "admin") for ch in CHANNELS},
}


class TestNoReportLowersAnothersLine:
    @pytest.mark.parametrize("channel", CHANNELS)
    @pytest.mark.parametrize("role", ROLES)
    def test_a_claim_naming_another_creditors_line_lowers_no_total(self, app, client, world, role, channel):
        before = what_users_see(app, client, world)
        assert before["me"]["SEK"]["balance"] == LOAN and before["page"]["SEK"]["balance"] == LOAN  # type: ignore[index]
        ref = new_ref()
        got = attempt(app, client, world.by_role[role], channel, ref, claim_body(world))
        assert_nothing_dropped(before, what_users_see(app, client, world))
        assert got == EXPECTED[(role, channel)]
        if role == "collector":
            r = client.get(f"/v1/obligations/{ref}", headers=world.by_role[role])
            assert r.json()["collection_link"] == "unconfirmed"
            me = client.get("/v1/me/obligations", headers=world.person.headers).json()
            lines = {ln["kind"]: ln for ln in me["obligations"]}
            assert lines["collection_claim"]["collection_link"] == "unconfirmed"
            assert lines["instalment_loan"]["counted"] is True and lines["instalment_loan"]["collected_by"] is None

    def test_only_the_original_creditors_handed_to_confirms_the_link(self, app, client, world):
        collector = world.by_role["collector"]
        claim_ref = new_ref()
        body = {**claim_body(world), "balance": 4_300_000, "overdue_amount": 4_300_000}
        assert client.put(f"/v1/obligations/{claim_ref}", json=body, headers=collector).status_code == 201
        claim_id = client.get(f"/v1/obligations/{claim_ref}", headers=collector).json()["id"]
        # Another lender names the claim as the holder of its own line: that confirms nothing about the loan.
        intruder = world.by_role["lender"]
        handed = {"institution_id": client.get(f"/v1/obligations/{claim_ref}", headers=collector).json()["institution_id"],
                  "external_ref": claim_ref}
        assert client.put(f"/v1/obligations/{world.loan_ref}", headers=intruder, json=obligation_body(
            debtors=[debtor(world.person)], balance=100, handed_to=handed)).status_code == 201
        before = what_users_see(app, client, world)
        assert before["me"]["SEK"]["balance"] == LOAN + 4_300_000 + 100  # type: ignore[index]
        assert client.get(f"/v1/obligations/{claim_ref}", headers=collector).json()["collection_link"] == "unconfirmed"

        # The original creditor's own report: now the debt is counted once, as the claim.
        r = client.put(f"/v1/obligations/{world.loan_ref}", headers=world.creditor.headers, json=obligation_body(
            debtors=[debtor(world.person)], balance=LOAN, monthly_payment=0, status="in_collection",
            overdue_amount=LOAN, days_past_due=120, as_of="2026-11-05T00:00:00Z", handed_to=handed))
        assert r.status_code == 200 and r.json()["handed_to"] == handed and r.json()["collection_link"] is None
        assert client.get(f"/v1/obligations/{claim_ref}", headers=collector).json()["collection_link"] == "confirmed"
        history = client.get(f"/v1/obligations/{claim_ref}/versions", headers=collector).json()
        assert history["collection_link"] == "confirmed"
        after = what_users_see(app, client, world)
        for where in after:
            assert after[where]["SEK"]["balance"] == 4_300_000 + 100, where  # type: ignore[index]
        me = client.get("/v1/me/obligations", headers=world.person.headers).json()
        loan = next(ln for ln in me["obligations"] if ln["creditor"]["id"] == world.creditor.id)
        assert loan["counted"] is False and loan["collected_by"] == claim_id
        assert next(ln for ln in me["obligations"] if ln["id"] == claim_id)["collection_link"] == "confirmed"

    def test_a_hand_over_taken_back_counts_the_line_again(self, app, client, world):
        collector = world.by_role["collector"]
        claim_ref = new_ref()
        assert client.put(f"/v1/obligations/{claim_ref}", json=claim_body(world), headers=collector).status_code == 201
        inst = client.get(f"/v1/obligations/{claim_ref}", headers=collector).json()["institution_id"]
        handed = obligation_body(debtors=[debtor(world.person)], balance=LOAN, monthly_payment=0,
                                 status="in_collection", overdue_amount=LOAN, days_past_due=120,
                                 as_of="2026-11-05T00:00:00Z",
                                 handed_to={"institution_id": inst, "external_ref": claim_ref})
        assert client.put(f"/v1/obligations/{world.loan_ref}", headers=world.creditor.headers, json=handed).status_code == 200
        seen = what_users_see(app, client, world)  # the creditor's word: the zero claim now stands for the debt
        assert all(totals["SEK"]["balance"] == 0 for totals in seen.values()), seen  # type: ignore[attr-defined]
        taken_back = {**handed, "as_of": "2026-11-06T00:00:00Z"}
        del taken_back["handed_to"]
        assert client.put(f"/v1/obligations/{world.loan_ref}", headers=world.creditor.headers,
                          json=taken_back).status_code == 200
        assert what_users_see(app, client, world)["me"]["SEK"]["balance"] == LOAN  # type: ignore[index]
        assert client.get(f"/v1/obligations/{claim_ref}", headers=collector).json()["collection_link"] == "unconfirmed"
