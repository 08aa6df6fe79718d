"""Tests for register.population: the synthetic national population of debts.

No database: every line is checked against the domain rules (ObligationReport, check_report,
parse_national_id), and the figures against the ranges the module documents.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tracemalloc
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import islice
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from register.domain.identity import parse_national_id
from register.domain.obligation import REVOLVING_KINDS, DebtorRole, Kind, ObligationReport, Status, check_report
from register.population import (
    CSV_COLUMNS,
    DEFAULT_AS_OF,
    DEFAULT_INSTITUTIONS,
    InstitutionSpec,
    Line,
    from_csv_row,
    generate,
    resolve_institution_ids,
    to_csv_row,
    write_report_files,
)

REPORT_FIELDS = set(ObligationReport.model_fields)
# corrects_dispute is for a lender answering a person's dispute; a generated population has none.
DOC_KEYS = (REPORT_FIELDS - {"corrects_dispute"}) | {"external_ref"}
IDS = {spec.key: str(uuid.uuid4()) for spec in DEFAULT_INSTITUTIONS}
NAMES = {spec.key: spec.name for spec in DEFAULT_INSTITUTIONS}
LENDERS = {spec.key for spec in DEFAULT_INSTITUTIONS if spec.role == "lender"}
COLLECTORS = {spec.key for spec in DEFAULT_INSTITUTIONS if spec.role == "collector"}
CURRENCY = {"SE": "SEK", "NO": "NOK", "FI": "EUR", "DK": "DKK", "PL": "PLN"}
OWN = {"primary", "co_debtor"}
AMORTISED = {"mortgage", "instalment_loan", "vehicle_loan"}
PERSONS = 20_000


def validated(doc: dict, *, now: datetime = DEFAULT_AS_OF + timedelta(days=1)) -> ObligationReport:
    """Validate like the register does, after the loader's key -> id substitution."""
    body = dict(resolve_institution_ids(doc, IDS))
    body.pop("external_ref")
    report = ObligationReport.model_validate(body)
    check_report(report, now=now)
    return report


def months_between(opened: str, matures: str) -> int:
    return round((date.fromisoformat(matures) - date.fromisoformat(opened)).days / 30.436875)


def annuity(principal: int, rate_bp: int, months: int) -> float:
    r = rate_bp / 120_000
    return principal / months if r == 0 else principal * r / (1 - (1 + r) ** -months)


@pytest.fixture(scope="module")
def population() -> list[Line]:
    """20,000 Swedish persons, seed 1 (about 33,000 lines), shared by the distribution tests."""
    return list(generate(PERSONS, seed=1))


@pytest.fixture(scope="module")
def people(population: list[Line]) -> dict[str, Counter]:
    """national id -> Counter of (role, kind) over the lenders' lines."""
    out: dict[str, Counter] = defaultdict(Counter)
    for line in population:
        for d in line.doc["debtors"]:
            out[d["national_id"]][(d["role"], line.doc["kind"])] += 1
    return out


# ---------------------------------------------------------------------------------------------
# The API
# ---------------------------------------------------------------------------------------------


class TestApi:
    def test_generate_returns_a_lazy_iterator(self):
        lines = generate(10**6)
        assert isinstance(lines, Iterator)
        assert not isinstance(lines, list | tuple)
        first = next(lines)  # a million persons: only the first is made before this returns
        assert isinstance(first, Line)

    def test_zero_persons(self):
        assert list(generate(0)) == []

    def test_one_person_has_nobody_to_share_with(self):
        for seed in range(50):
            for line in generate(1, seed=seed):
                assert [d["role"] for d in line.doc["debtors"]] == ["primary"]

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"persons": -1},
            {"persons": 1.5},
            {"persons": 10, "country": "XX"},
            {"persons": 10, "country": "se"},
            {"persons": 10, "institutions": (InstitutionSpec("Bad Key", "x", "lender", ("credit_card",), 1.0),)},
            {"persons": 10, "institutions": (InstitutionSpec("bank", "x", "regulator", ("credit_card",), 1.0),)},
            {"persons": 10, "institutions": (InstitutionSpec("bank", "x", "lender", ("gold_bars",), 1.0),)},
            {"persons": 10, "institutions": (InstitutionSpec("bank", "x", "lender", ("credit_card",), 0.0),)},
            {"persons": 10, "institutions": (InstitutionSpec("bank", "x", "lender", ("credit_card",), 1.0),) * 2},
        ],
    )
    def test_bad_arguments_are_refused_at_the_call(self, kwargs):
        persons = kwargs.pop("persons")
        with pytest.raises(ValueError):
            generate(persons, **kwargs)  # not only at the first next()

    def test_default_institutions(self):
        keys = [s.key for s in DEFAULT_INSTITUTIONS]
        assert len(keys) == len(set(keys))
        assert 6 <= len(LENDERS) <= 7 and len(COLLECTORS) == 2
        kinds = {k for s in DEFAULT_INSTITUTIONS if s.role == "lender" for k in s.kinds}
        assert kinds == {k.value for k in Kind} - {"collection_claim", "other"}
        assert all(s.kinds == ("collection_claim",) for s in DEFAULT_INSTITUTIONS if s.role == "collector")

    def test_line_collects_key_and_resolution(self, population):
        claim = next(line for line in population if line.doc["kind"] == "collection_claim")
        assert claim.collects_key in LENDERS
        resolved = resolve_institution_ids(claim.doc, IDS)
        assert resolved["collects"] == {"institution_id": IDS[claim.collects_key],
                                        "external_ref": claim.doc["collects"]["external_ref"]}  # fmt: skip
        assert claim.doc["collects"]["institution_id"] == claim.collects_key  # the original is untouched
        handed = next(line for line in population if line.doc["handed_to"])
        assert handed.handed_to_key in COLLECTORS and handed.collects_key is None
        assert resolve_institution_ids(handed.doc, IDS)["handed_to"] == {
            "institution_id": IDS[handed.handed_to_key], "external_ref": handed.doc["handed_to"]["external_ref"]}
        plain = next(line for line in population if line.doc["kind"] != "collection_claim" and not line.doc["handed_to"])
        assert plain.collects_key is None and plain.handed_to_key is None
        assert resolve_institution_ids(plain.doc, IDS) is plain.doc
        with pytest.raises(KeyError):
            resolve_institution_ids(claim.doc, {})


# ---------------------------------------------------------------------------------------------
# Determinism
# ---------------------------------------------------------------------------------------------


class TestDeterminism:
    def test_same_arguments_same_lines(self):
        assert list(generate(2000, seed=5)) == list(generate(2000, seed=5))

    def test_another_seed_other_lines(self):
        a = [line.doc for line in generate(500, seed=1)]
        b = [line.doc for line in generate(500, seed=2)]
        assert a != b
        ids_a = {d["national_id"] for doc in a for d in doc["debtors"]}
        ids_b = {d["national_id"] for doc in b for d in doc["debtors"]}
        assert len(ids_a & ids_b) < len(ids_a) // 10

    def test_ref_prefix_keeps_populations_of_several_seeds_apart(self):
        plain = [line.doc for line in generate(300, seed=2)]
        prefixed = [line.doc for line in generate(300, seed=2, ref_prefix="G2.")]
        assert [d["external_ref"] for d in prefixed] == ["G2." + d["external_ref"] for d in plain]
        claims = [d for d in prefixed if d.get("collects")]
        assert claims and all(d["collects"]["external_ref"].startswith("G2.") for d in claims)
        assert {d["external_ref"] for d in prefixed}.isdisjoint(ln.doc["external_ref"] for ln in generate(300, seed=1))
        with pytest.raises(ValueError, match="ref_prefix"):
            generate(10, ref_prefix="bad prefix!")

    def test_another_country_other_lines(self):
        se = [line.doc for line in generate(200, country="SE")]
        no = [line.doc for line in generate(200, country="NO")]
        assert se != no
        assert {doc["currency"] for doc in no} == {"NOK"}

    def test_as_of_moves_the_times(self):
        at = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
        for line in generate(300, as_of=at):
            t = datetime.fromisoformat(line.doc["as_of"])
            assert at - timedelta(days=3) <= t <= at
        assert list(generate(300, as_of=at)) == list(generate(300, as_of=at.replace(tzinfo=None)))

    def test_default_as_of_is_fixed(self):
        assert DEFAULT_AS_OF == datetime(2026, 11, 1, tzinfo=UTC)
        assert list(generate(100)) == list(generate(100, as_of=DEFAULT_AS_OF))

    def test_independent_of_hash_randomisation(self):
        """Two fresh interpreters with different PYTHONHASHSEEDs produce exactly these lines."""
        code = (
            "import hashlib, json\n"
            "from register.population import generate\n"
            "h = hashlib.sha256()\n"
            "for line in generate(300, seed=9):\n"
            "    h.update(json.dumps([line.institution, line.doc], sort_keys=True).encode())\n"
            "print(h.hexdigest())\n"
        )
        here = hashlib.sha256()
        for line in generate(300, seed=9):
            here.update(json.dumps([line.institution, line.doc], sort_keys=True).encode())
        for hash_seed in ("1", "2"):
            env = {**os.environ, "PYTHONHASHSEED": hash_seed}
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
            assert out.stdout.strip() == here.hexdigest()


# ---------------------------------------------------------------------------------------------
# Every line is a valid report
# ---------------------------------------------------------------------------------------------


class TestValidity:
    def test_a_sample_validates(self, population):
        sample = population[::5]  # about 6,600 lines, every kind and status
        assert len(sample) > 5000
        for line in sample:
            assert set(line.doc) == DOC_KEYS
            validated(line.doc)

    @pytest.mark.parametrize("country", sorted(CURRENCY))
    def test_every_country_validates(self, country):
        for line in generate(1500, seed=3, country=country):
            report = validated(line.doc)
            assert report.currency == CURRENCY[country]
            for debtor in report.debtors:
                assert debtor.country == country
                parse_national_id(country, debtor.national_id)  # valid, and not an official test number

    def test_debtors(self, population):
        for line in population:
            debtors = line.doc["debtors"]
            assert [d["role"] for d in debtors].count("primary") == 1
            assert debtors[0]["role"] == "primary"
            numbers = [d["national_id"] for d in debtors]
            assert len(set(numbers)) == len(numbers)  # never the same person twice on one line
            assert {d["role"] for d in debtors} <= {r.value for r in DebtorRole}

    def test_json_ready(self, population):
        for line in islice(population, 3000):
            assert json.loads(json.dumps(line.doc)) == line.doc
            for key in ("original_amount", "balance", "credit_limit", "monthly_payment", "interest_rate_bp",
                        "overdue_amount", "days_past_due"):  # fmt: skip
                assert line.doc[key] is None or type(line.doc[key]) is int

    def test_times(self, population):
        latest = DEFAULT_AS_OF
        for line in population:
            doc = line.doc
            as_of = datetime.fromisoformat(doc["as_of"])
            assert latest - timedelta(days=3) <= as_of <= latest
            given = datetime.fromisoformat(doc["registration_consent"]["given_at"])
            assert given <= as_of
            assert date.fromisoformat(doc["opened_on"]) <= as_of.date()
            if doc["matures_on"] is not None:
                assert doc["matures_on"] > doc["opened_on"]
            if doc["kind"] != "collection_claim":
                assert given.date().isoformat() == doc["opened_on"]  # signed the day it was opened

    def test_external_refs_unique_per_institution(self, population):
        refs: dict[str, set[str]] = defaultdict(set)
        pattern = re.compile(r"^[A-Za-z0-9._:\-]{1,200}$")
        for line in population:
            ref = line.doc["external_ref"]
            assert pattern.match(ref)
            assert ref.startswith(line.institution.upper() + "-")
            assert ref not in refs[line.institution]
            refs[line.institution].add(ref)

    def test_status_fields_agree(self, population):
        for line in population:
            doc = line.doc
            status = doc["status"]
            assert status in {s.value for s in Status} - {"closed"}
            if status in ("current", "payment_plan") and doc["kind"] != "collection_claim":
                assert doc["overdue_amount"] == 0 and doc["days_past_due"] == 0
            if status == "overdue":
                assert 30 <= doc["days_past_due"] <= 180
                assert 0 < doc["overdue_amount"] <= doc["balance"]
            if status in ("in_collection", "written_off", "enforcement") and doc["kind"] != "collection_claim":
                assert doc["overdue_amount"] == doc["balance"] > 0
                assert doc["days_past_due"] >= 75
            if doc["days_past_due"] and doc["kind"] != "collection_claim":  # a claim's opened_on is its handover
                age = (DEFAULT_AS_OF.date() - date.fromisoformat(doc["opened_on"])).days
                assert age >= doc["days_past_due"]

    def test_amounts_by_kind(self, population):
        for line in population:
            doc = line.doc
            kind = doc["kind"]
            if kind in REVOLVING_KINDS:
                assert doc["credit_limit"] > 0 and doc["original_amount"] is None and doc["matures_on"] is None
                if doc["status"] == "current":
                    assert doc["balance"] <= doc["credit_limit"]
                assert (doc["monthly_payment"] is None) == (kind == "overdraft")
            else:
                assert doc["credit_limit"] is None
                assert doc["original_amount"] > 0
            if kind in AMORTISED | {"buy_now_pay_later", "student_loan"}:
                assert doc["balance"] <= doc["original_amount"]
                assert doc["matures_on"] is not None

    def test_monthly_payment_fits_amount_rate_and_term(self, population):
        checked = 0
        for line in population:
            doc = line.doc
            if doc["kind"] not in AMORTISED or doc["status"] != "current":
                continue
            months = months_between(doc["opened_on"], doc["matures_on"])
            expected = annuity(doc["original_amount"], doc["interest_rate_bp"], months)
            assert abs(doc["monthly_payment"] - expected) <= 0.01 * expected + 100, doc
            checked += 1
        assert checked > 5000

    def test_rates_are_realistic_per_kind(self, population):
        rates: dict[str, list[int]] = defaultdict(list)
        for line in population:
            rates[line.doc["kind"]].append(line.doc["interest_rate_bp"])
        ranges = {"mortgage": (200, 700), "vehicle_loan": (300, 1100), "student_loan": (0, 300),
                  "instalment_loan": (400, 2600), "credit_card": (1400, 2600), "revolving_credit": (800, 2100),
                  "overdraft": (800, 1600), "buy_now_pay_later": (0, 2600),
                  "collection_claim": (900, 1300)}  # fmt: skip
        for kind, values in rates.items():
            low, high = ranges[kind]
            assert low <= min(values) and max(values) <= high, kind

    def test_sizes_are_realistic_per_kind(self, population):
        balances: dict[str, list[int]] = defaultdict(list)
        for line in population:
            if line.doc["balance"]:
                balances[line.doc["kind"]].append(line.doc["balance"] // 100)  # SEK
        median = {kind: sorted(v)[len(v) // 2] for kind, v in balances.items()}
        assert 800_000 <= median["mortgage"] <= 3_000_000
        assert 20_000 <= median["instalment_loan"] <= 100_000
        assert 50_000 <= median["vehicle_loan"] <= 300_000
        assert 50_000 <= median["student_loan"] <= 250_000
        assert 500 <= median["buy_now_pay_later"] <= 3000
        assert 1000 <= median["credit_card"] <= 30_000
        assert max(balances["buy_now_pay_later"]) <= 25_000


# ---------------------------------------------------------------------------------------------
# A believable spread (20,000 persons)
# ---------------------------------------------------------------------------------------------


class TestDistribution:
    def test_share_without_debt(self, people):
        indebted = sum(1 for roles in people.values() if any(role in OWN for role, _ in roles))
        assert 0.30 <= 1 - indebted / PERSONS <= 0.40

    def test_mortgages_about_a_quarter_often_joint(self, population, people):
        on_mortgage = sum(1 for roles in people.values() if any(r in OWN and k == "mortgage" for r, k in roles))
        assert 0.20 <= on_mortgage / PERSONS <= 0.30
        mortgages = [line.doc for line in population if line.doc["kind"] == "mortgage"]
        joint = sum(1 for doc in mortgages if any(d["role"] == "co_debtor" for d in doc["debtors"]))
        assert 0.4 <= joint / len(mortgages) <= 0.9

    def test_credits_per_person_long_tail(self, people):
        counts = Counter(sum(n for (role, _), n in roles.items() if role in OWN) for roles in people.values())
        counts.pop(0, None)  # guarantors only
        indebted = sum(counts.values())
        assert counts[1] / indebted > 0.2
        assert max(counts) >= 8
        assert sum(n for c, n in counts.items() if c > 8) / indebted < 0.02
        assert 1.3 <= sum(c * n for c, n in counts.items()) / PERSONS <= 2.2

    def test_joint_guarantee_overdue_collection_present(self, population):
        roles = Counter(d["role"] for line in population for d in line.doc["debtors"])
        assert roles["co_debtor"] > 0.03 * PERSONS
        assert roles["guarantor"] > 0.005 * PERSONS
        lender_lines = [line.doc for line in population if line.institution in LENDERS]
        statuses = Counter(doc["status"] for doc in lender_lines)
        assert 0.01 <= statuses["overdue"] / len(lender_lines) <= 0.05
        assert 0.02 <= 1 - statuses["current"] / len(lender_lines) <= 0.08
        for status in ("in_collection", "payment_plan", "written_off", "enforcement"):
            assert statuses[status] > 0, status
        joint_vehicle = [doc for doc in lender_lines if doc["kind"] == "vehicle_loan"
                         and any(d["role"] == "co_debtor" for d in doc["debtors"])]  # fmt: skip
        assert joint_vehicle

    def test_guarantees_are_a_few_percent_of_loans(self, population):
        loans = [line.doc for line in population if line.doc["kind"] in AMORTISED]
        guaranteed = sum(1 for doc in loans if any(d["role"] == "guarantor" for d in doc["debtors"]))
        assert 0.01 <= guaranteed / len(loans) <= 0.08

    def test_unused_cards_count_with_their_limit(self, population):
        cards = [line.doc for line in population if line.doc["kind"] == "credit_card"]
        unused = [doc for doc in cards if doc["balance"] == 0]
        assert 0.25 <= len(unused) / len(cards) <= 0.55
        assert all(doc["credit_limit"] > 0 and doc["monthly_payment"] == 0 for doc in unused)

    def test_every_institution_reports(self, population):
        by_institution = Counter(line.institution for line in population)
        assert set(by_institution) == {s.key for s in DEFAULT_INSTITUTIONS}
        kinds: dict[str, set[str]] = defaultdict(set)
        for line in population:
            kinds[line.institution].add(line.doc["kind"])
        for spec in DEFAULT_INSTITUTIONS:
            assert kinds[spec.key] == set(spec.kinds), spec.key

    def test_every_kind_present(self, population):
        kinds = {line.doc["kind"] for line in population}
        assert kinds == {k.value for k in Kind} - {"other"}

    def test_student_loans_are_for_the_young(self, population):
        ages = []
        for line in population:
            if line.doc["kind"] == "student_loan":
                born = line.doc["debtors"][0]["national_id"][:4]  # SE: YYYYMMDD-NNNN
                ages.append(2026 - int(born))
        assert max(ages) <= 56
        assert sorted(ages)[len(ages) // 2] < 35

    def test_collection_claims_collect_what_the_lender_reported(self, population):
        reported = {(line.institution, line.doc["external_ref"]): line.doc for line in population}
        claims = [line for line in population if line.doc["kind"] == "collection_claim"]
        assert len(claims) > 0.005 * PERSONS
        for claim in claims:
            assert claim.institution in COLLECTORS
            doc = claim.doc
            lender_key = doc["collects"]["institution_id"]
            assert lender_key == claim.collects_key and lender_key in LENDERS
            collected = reported[(lender_key, doc["collects"]["external_ref"])]
            assert collected["status"] in ("in_collection", "written_off")
            assert collected["kind"] not in ("mortgage", "student_loan")
            assert doc["original_creditor"] == NAMES[lender_key]
            assert doc["debtors"] == collected["debtors"]
            assert doc["currency"] == collected["currency"]
            assert doc["original_amount"] == collected["balance"] <= doc["balance"]
            assert doc["status"] in ("in_collection", "payment_plan", "enforcement")
            assert doc["opened_on"] > collected["opened_on"]
            # ... and the lender names the claim back, so the link is confirmed (SPEC section 8)
            assert collected["handed_to"] == {"institution_id": claim.institution, "external_ref": doc["external_ref"]}
            assert doc["handed_to"] is None
        collected_refs = [(c.collects_key, c.doc["collects"]["external_ref"]) for c in claims]
        assert len(collected_refs) == len(set(collected_refs))  # each debt collected once
        handed_over = [k for k, doc in reported.items() if k[0] in LENDERS
                       and doc["status"] in ("in_collection", "written_off")]  # fmt: skip
        assert sorted(handed_over) == sorted(collected_refs)

    def test_custom_institutions(self):
        only = (InstitutionSpec("cards", "Cards Ltd", "lender", ("credit_card",), 1.0),)
        lines = list(generate(3000, seed=4, institutions=only))
        assert lines and {line.institution for line in lines} == {"cards"}
        assert {line.doc["kind"] for line in lines} == {"credit_card"}
        statuses = {line.doc["status"] for line in lines}
        assert not statuses & {"in_collection", "written_off"}  # nobody to hand them to
        for line in lines[::10]:
            validated(line.doc)

    def test_market_shares(self, population):
        cards = Counter(line.institution for line in population if line.doc["kind"] == "credit_card")
        share = cards["nordbank"] / (cards["nordbank"] + cards["kortbolaget"])
        assert abs(share - 0.40 / 0.75) < 0.03


# ---------------------------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30)
_part = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters=":|"), min_size=1, max_size=14)
_int = st.integers(min_value=-(10**15), max_value=10**15)
_debtor = st.fixed_dictionaries({"country": _part, "national_id": _part, "role": _part})
_doc = st.fixed_dictionaries({
    "external_ref": _text,
    "kind": _text,
    "currency": _text,
    "original_amount": st.none() | _int,
    "balance": st.none() | _int,
    "credit_limit": st.none() | _int,
    "monthly_payment": st.none() | _int,
    "interest_rate_bp": st.none() | _int,
    "opened_on": st.none() | _text,
    "matures_on": st.none() | _text,
    "status": _text,
    "overdue_amount": st.none() | _int,
    "days_past_due": st.none() | _int,
    "original_creditor": st.none() | _text,
    "collects": st.none() | st.fixed_dictionaries({"institution_id": _text, "external_ref": _text}),
    "handed_to": st.none() | st.fixed_dictionaries({"institution_id": _text, "external_ref": _text}),
    "debtors": st.lists(_debtor, max_size=4),
    "registration_consent": st.none() | st.fixed_dictionaries({"reference": _text, "given_at": _text,
                                                                 "method": _text}),
    "as_of": st.none() | _text,
})  # fmt: skip


def through_csv(docs: list[dict]) -> list[dict]:
    """Write docs with csv.writer and read them back with csv.DictReader (quoting included)."""
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for doc in docs:
        writer.writerow(to_csv_row(doc))
    buf.seek(0)
    return [from_csv_row(row) for row in csv.DictReader(buf)]


class TestCsv:
    def test_columns(self):
        assert CSV_COLUMNS == (
            "external_ref", "kind", "currency", "original_amount", "balance", "credit_limit", "monthly_payment",
            "interest_rate_bp", "opened_on", "matures_on", "status", "overdue_amount", "days_past_due",
            "original_creditor", "collects_institution_id", "collects_external_ref", "handed_to_institution_id",
            "handed_to_external_ref", "debtors", "registration_consent_reference", "registration_consent_given_at", "registration_consent_method",
            "as_of",
        )  # fmt: skip

    def test_round_trip_of_generated_lines(self, population):
        docs = [line.doc for line in population]
        for doc in docs:
            assert from_csv_row(dict(zip(CSV_COLUMNS, to_csv_row(doc), strict=True))) == doc
        assert through_csv(docs[:5000]) == docs[:5000]

    @settings(max_examples=300, deadline=None)
    @given(_doc)
    def test_round_trip_of_any_doc(self, doc):
        row = to_csv_row(doc)
        assert len(row) == len(CSV_COLUMNS)
        assert from_csv_row(dict(zip(CSV_COLUMNS, row, strict=True))) == doc
        assert through_csv([doc]) == [doc]

    def test_cells(self, population):
        claim = next(line.doc for line in population if len(line.doc["debtors"]) > 1)
        row = dict(zip(CSV_COLUMNS, to_csv_row(claim), strict=True))
        parts = row["debtors"].split("|")
        assert len(parts) == len(claim["debtors"]) >= 2
        assert parts[0] == f"SE:{claim['debtors'][0]['national_id']}:primary"
        assert row["registration_consent_reference"] == claim["registration_consent"]["reference"]
        assert row["original_creditor"] == (claim["original_creditor"] or "")
        assert row["balance"] == str(claim["balance"])

    def test_empty_cell_is_null(self):
        row = dict.fromkeys(CSV_COLUMNS, "")
        row.update(external_ref="R-1", kind="credit_card", balance="0", debtors="SE:19880320-0016:primary")
        doc = from_csv_row(row)
        assert doc["credit_limit"] is None and doc["collects"] is None and doc["original_creditor"] is None
        assert doc["handed_to"] is None
        assert doc["registration_consent"] is None and doc["as_of"] is None
        assert doc["balance"] == 0 and type(doc["balance"]) is int
        assert doc["debtors"] == [{"country": "SE", "national_id": "19880320-0016", "role": "primary"}]

    @pytest.mark.parametrize(
        "cells",
        [
            {"balance": "12.5"},
            {"balance": "1_000"},
            {"balance": " 12"},
            {"days_past_due": "ten"},
            {"debtors": "SE:19880320-0016"},
            {"debtors": "SE:1988:0320-0016:primary"},
            {"collects_institution_id": "nordbank"},
            {"handed_to_external_ref": "INKASSO-1"},
            {"registration_consent_reference": "AGR-1"},
        ],
    )
    def test_malformed_cells_are_refused(self, cells):
        row = dict.fromkeys(CSV_COLUMNS, "")
        row.update(cells)
        with pytest.raises(ValueError):
            from_csv_row(row)

    @pytest.mark.parametrize(
        "change",
        [
            {"debtors": [{"country": "SE", "national_id": "1988|0320", "role": "primary"}]},
            {"debtors": [{"country": "SE", "national_id": "1988:0320", "role": "primary"}]},
            {"original_creditor": ""},
        ],
    )
    def test_unwritable_docs_are_refused(self, population, change):
        doc = {**population[0].doc, **change}
        with pytest.raises(ValueError):
            to_csv_row(doc)


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lines() -> list[Line]:
    return list(generate(3000, seed=11))


class TestReportFiles:
    def test_ndjson_one_file_per_institution(self, lines, tmp_path):
        paths = write_report_files(iter(lines), tmp_path / "out")
        expected = Counter(line.institution for line in lines)
        assert set(paths) == set(expected)
        for key, path in paths.items():
            assert path == tmp_path / "out" / f"{key}.ndjson"
            docs = [json.loads(text) for text in path.read_text(encoding="utf-8").splitlines()]
            assert len(docs) == expected[key]
            assert docs == [line.doc for line in lines if line.institution == key]
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(f"{k}.ndjson" for k in expected)

    def test_csv_one_file_per_institution(self, lines, tmp_path):
        paths = write_report_files(lines, tmp_path, fmt="csv")
        expected = Counter(line.institution for line in lines)
        assert set(paths) == set(expected)
        for key, path in paths.items():
            assert path.name == f"{key}.csv"
            with path.open(encoding="utf-8", newline="") as fh:
                reader = csv.DictReader(fh)
                assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
                docs = [from_csv_row(row) for row in reader]
            assert len(docs) == expected[key]
            assert docs == [line.doc for line in lines if line.institution == key]

    def test_non_ascii_names_survive(self, lines, tmp_path):
        paths = write_report_files(lines, tmp_path)
        text = paths["inkasso"].read_text(encoding="utf-8")
        assert "Snabblån Sverige AB" in text or "Lånekompaniet Norden AB" in text or "Nordbank AB" in text

    def test_streams_from_a_generator(self, tmp_path):
        paths = write_report_files(generate(500, seed=2), tmp_path, fmt="csv")
        total = sum(len(p.read_text(encoding="utf-8").splitlines()) - 1 for p in paths.values())
        assert total == sum(1 for _ in generate(500, seed=2))

    def test_replaces_existing_files(self, lines, tmp_path):
        (tmp_path / "nordbank.ndjson").write_text("old\n" * 100_000)
        paths = write_report_files(lines[:50], tmp_path)
        assert "old" not in paths["nordbank"].read_text()

    def test_no_lines_no_files(self, tmp_path):
        assert write_report_files([], tmp_path / "empty") == {}
        assert list((tmp_path / "empty").iterdir()) == []

    def test_unknown_format(self, tmp_path):
        with pytest.raises(ValueError):
            write_report_files([], tmp_path, fmt="xml")


# ---------------------------------------------------------------------------------------------
# Streaming
# ---------------------------------------------------------------------------------------------


_RSS_CHILD = """
import resource, sys
from register.population import generate
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
lines = 0
for line in generate(200_000, seed=3):
    lines += 1
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
print(lines, (after - before) * scale)
"""


class TestStreaming:
    def test_memory_stays_small_tracemalloc(self):
        """Peak Python allocations while generating 10,000 persons (about 16,000 lines, which would take
        some 25 MB as a list): a few MB, mostly the date cache."""
        tracemalloc.start()
        try:
            count = 0
            for _ in generate(10_000, seed=3):
                count += 1
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert count > 14_000
        assert peak < 8 * 1024 * 1024

    @pytest.mark.skipif(sys.platform == "win32", reason="resource is POSIX only")
    def test_memory_stays_small_200k_persons(self):
        """200,000 persons (about 330,000 lines) in a fresh interpreter: the peak resident size grows
        by well under 50 MB (tracemalloc would make this run minutes)."""
        out = subprocess.run([sys.executable, "-c", _RSS_CHILD], capture_output=True, text=True, check=True)
        lines, grew = map(int, out.stdout.split())
        assert lines > 300_000
        assert grew < 50 * 1024 * 1024, f"peak RSS grew by {grew / 2**20:.1f} MiB"

    def test_throughput(self):
        """A coarse guard against a slowdown: 20,000 persons well within a few seconds (about 1 s)."""
        import time

        start = time.perf_counter()
        count = sum(1 for _ in generate(20_000, seed=8))
        elapsed = time.perf_counter() - start
        assert count > 25_000
        assert elapsed < 10, f"{count} lines took {elapsed:.1f} s"


def test_package_is_pure():
    """stdlib, register.domain and the package's own modules only: no database, no web framework."""
    package = Path(sys.modules["register.population"].__file__ or "").parent
    modules = sorted(package.glob("*.py"))
    assert len(modules) > 1
    stdlib = set(sys.stdlib_module_names)
    for path in modules:
        source = path.read_text(encoding="utf-8")
        imports = {m.group(1).split(".")[0] for m in re.finditer(r"^(?:from|import) ([\w.]+)", source, re.M)}
        assert imports - stdlib <= {"register"}, path.name
        assert not re.search(r"^(?:from|import) register\.(?!domain\b|population\b)", source, re.M), path.name

