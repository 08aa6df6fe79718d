"""A synthetic national population of consumers and their debts, as report lines per institution.

`generate(persons, seed=..., country=...)` streams `Line`s: one report line (the JSON shape of a batch
report line: the `ObligationReport` fields plus `external_ref`) and the key of the institution that
reports it. It is deterministic for `(persons, seed, country, as_of)` and streaming: persons are made one
at a time from one seeded RNG, and the generator keeps only a handful of persons (the next one, for
couples, and the last 64, for guarantors) plus a bitmap of 4-8 bytes per person that keeps identity
numbers unique (its size depends on `persons`, so a smaller run is not a prefix of a larger one).
`write_report_files` streams the lines into one NDJSON or CSV file per institution.

Pure module: stdlib and `register.domain` only (no database, no web framework).

Collection claims and institution ids
-------------------------------------
A collector's `collection_claim` names the obligation it collects as
`collects: {"institution_id": ..., "external_ref": ...}`, and the lender's collected line names the claim
back as `handed_to: {"institution_id": ..., "external_ref": ...}` (a claim counts the debt once only when
each names the other). Institution ids are UUIDs assigned when the institutions are created, so the
generator puts the other institution's *key* (e.g. `"snabblan"`, `"inkasso"`) in `collects.institution_id`
and `handed_to.institution_id` (also available as `Line.collects_key` and `Line.handed_to_key`). A loader
must replace them with the institutions' ids before reporting the lines (`resolve_institution_ids` does
that); until then such a line does not pass `ObligationReport` validation (the field must be a UUID).
Everything else is a valid report line as generated.

The figures (per adult; where DOMAIN.md gives a figure it is cited)
-------------------------------------------------------------------
Amounts are set in SEK and scaled per country (NOK x1.0, EUR x0.09, DKK x0.65, PLN x0.25: rough price
levels, not exchange rates), then rounded to whole "nice" steps; all amounts are integers in minor units
(öre, øre, cent, grosz), rates in hundredths of a percent (10.20 % = 1020), as in Norway's delivery
standard (DOMAIN.md, "Facts for the interfaces"). Rates move with the country (NO +1.2 pp, FI -0.3 pp,
DK -0.2 pp, PL +3.5 pp on the Swedish levels below; student loans a quarter of that).

* Adults 18-95, in age bands 18-24 10 %, 25-34 17 %, 35-44 16 %, 45-54 16 %, 55-64 15 %, 65-74 14 %,
  75+ 12 %.
* Any debt at all: 55 % (18-24), 78 % (25-34), 80 % (35-44), 78 % (45-54), 70 % (55-64), 50 % (65-74),
  30 % (75+), so about 35 % of adults have none (no line as primary or co-debtor). The indebted have a
  credit appetite, low 60 %, medium 28 %, high 12 %, that drives how many unsecured credits they have and
  how often they fall behind. A person with debts has at least one credit (a card if nothing else was
  drawn); credits per indebted person run from 1 to about 8 (median 2), with a thin tail to 12.
* Couples: an unpartnered adult of 22+ forms a couple with the next person (of a similar age) with
  probability 45 %, so a little over half of adults live in couples.
* Mortgages (about 25 % of adults are a debtor on one): a couple where both have debts takes a joint
  mortgage (the lower person index primary, the partner `co_debtor`; emitted once) with probability 70 %
  if both are 23-80; others aged 25-80 have their own with probability 17 %. Lognormal around 2.0 M SEK
  (0.3-12 M), 25-50 years, 2.5-5.5 %, annuity. Not in Norway's register (DOMAIN.md: mortgages, car
  loans, student loans and collection cases are not covered there), but this register keeps secured
  debt and collections too.
* Vehicle loans: 10-12 % of the indebted aged 20-80, 50 k-1.2 M SEK (median 250 k), 3-7 years,
  3.9-9.9 %; joint with the partner in 35 % of couples that both have debts.
* Student loans: of the indebted, 45 % at 18-24, 55 % at 25-34, 35 % at 35-44, 12 % at 45-54;
  20 k-600 k SEK (median 180 k), 1.0-2.5 %, paid over 25 years from half a year after 3-5 years of study
  (nothing to pay while studying). Reported by a state student-finance agency.
* Credit cards (DOMAIN.md: frame credits count, and an unused card counts with its full limit): 0-3 per
  person by appetite (45 % / 30 % / 20 % have none); limits 5 k-100 k SEK; 40 % of cards unused
  (balance 0, full limit); 14.9-24.9 %; minimum payment 3 % of the balance (at least 200 SEK).
* Revolving (account) credit: 3 % / 12 % / 35 % by appetite; limit 10 k-300 k SEK (median 50 k),
  30-100 % used, 8.9-19.9 %, 2 % of the balance a month (at least 300 SEK).
* Overdrafts: 4 % / 8 % / 20 %; limit 5 k-50 k SEK, 30 % unused; no fixed monthly payment (null).
* Unsecured instalment (consumer) loans: 0-3 per person (85 % / 55 % / 25 % have none); lognormal around
  60 k SEK (5 k-600 k), 1-15 years (longer for larger loans), 4.9-9.9 % / 7.9-14.9 % / 12.9-24.9 % by
  appetite; annuity.
* Buy now, pay later: 0-3 purchases (80 % / 60 % / 40 % have none; none for half of those over 50);
  around 1,200 SEK (99-25,000): 55 % invoices due in 30 days, 25 % split in 3 months (both
  interest-free), 20 % part payment over 12-36 months at 19.9-24.9 %.
* Result: about 1.65 lines per person; mortgages are about 85 % of all balances and unsecured credit
  (cards, account credit, overdrafts, consumer loans, BNPL) about 6-7 % (DOMAIN.md: in Norway unsecured
  consumer credit was about 3 % of household debt, which was above 3,000 bn NOK at the end of 2015;
  consumer credit is a larger share in Sweden), student and vehicle loans the rest.
* Arrears: a credit falls behind with probability 0.4 % / 3 % / 12 % by appetite (x0.25 for mortgages,
  x1.5 for BNPL, x1.2 for student loans; never while nothing is due yet): about 4 % of the lenders'
  lines, 2 % overdue. Of those credits: 55 % `overdue` (30-180 days past due, 1-6 monthly payments in
  arrears); 22 % `in_collection` and 7 % `written_off` (sold), the whole balance due (75-400 and 180-900
  days), each with a collector's `collection_claim` collecting it, named back in the lender's `handed_to`
  (balance plus 2-15 % interest and fees;
  status in_collection 70 %, payment_plan 20 %, enforcement 10 %; late-payment interest 10-12.5 % by
  country); 8 % `payment_plan` (a reduced payment, nothing past due); 8 % `enforcement` (with the
  enforcement authority, no collector). Mortgages (then overdue) and student loans (then enforcement)
  never go to a collector. A credit in arrears is at least 30 days older than its days past due (its
  dates move back if it was drawn younger). Revolving credit in arrears is 85-105 % used: the only way a
  balance exceeds its limit.
* Guarantees: 12 % of the instalment, vehicle and mortgage loans of borrowers under 30 (a guarantor of
  45+ among the last 64 persons: a parent), 2 % of the others (any other recent adult).
* `registration_consent`: signed when the credit was opened (`given_at` on `opened_on`, 08:00-22:00 UTC),
  by e-signature 80 %, online form 8 %, paper 8 %, recorded call 4 %; a collection claim carries the
  consent of the credit it collects.
* `as_of`: the given `as_of` (default 2026-11-01T00:00:00Z) minus 0-3 days, per line, to the minute.
  Every credit was opened at least 4 days before the given `as_of`, so `opened_on`, `given_at` <= `as_of`.
* `external_ref`: `<KEY>-<sequence>` per institution (e.g. `NORDBANK-00000042`), unique per institution.
"""

from __future__ import annotations

import csv
import json
import math
import random
import re
import zlib
from bisect import bisect
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from register.domain.currency import MINOR_UNITS
from register.domain.identity import generate_national_id
from register.domain.obligation import Kind

__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_AS_OF",
    "DEFAULT_INSTITUTIONS",
    "InstitutionSpec",
    "Line",
    "from_csv_row",
    "generate",
    "resolve_institution_ids",
    "to_csv_row",
    "write_report_files",
]

DEFAULT_AS_OF = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class InstitutionSpec:
    """An institution of the synthetic market."""

    key: str  # stable short key: [a-z][a-z0-9_]*, also the prefix of its external refs
    name: str
    role: str  # "lender" | "collector"
    kinds: tuple[str, ...]  # kinds it reports (collectors: collection_claim)
    share: float  # market share among the lenders (or collectors) of those kinds


DEFAULT_INSTITUTIONS: tuple[InstitutionSpec, ...] = (
    InstitutionSpec("nordbank", "Nordbank AB", "lender",
                    ("mortgage", "instalment_loan", "credit_card", "overdraft", "vehicle_loan"), 0.40),
    InstitutionSpec("kortbolaget", "Kortbolaget AB", "lender", ("credit_card", "revolving_credit"), 0.35),
    InstitutionSpec("snabblan", "Snabblån Sverige AB", "lender", ("instalment_loan", "revolving_credit"), 0.20),
    InstitutionSpec("lanekompaniet", "Lånekompaniet Norden AB", "lender", ("instalment_loan",), 0.15),
    InstitutionSpec("betalasenare", "Betala Senare AB", "lender", ("buy_now_pay_later",), 1.0),
    InstitutionSpec("bilfinans", "Bilfinans Norden AB", "lender", ("vehicle_loan",), 0.60),
    InstitutionSpec("studiemedel", "Studiemedelsverket (demo)", "lender", ("student_loan",), 1.0),
    InstitutionSpec("inkasso", "Trygg Inkasso AB", "collector", ("collection_claim",), 0.60),
    InstitutionSpec("fordran", "Nordisk Fordran AB", "collector", ("collection_claim",), 0.40),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Line:
    """One report line and the institution that reports it.

    `doc` has exactly the `ObligationReport` fields plus `external_ref`, JSON-ready: dates and times as
    ISO strings, amounts as integers in minor units, absent values as None. For a collection claim
    `doc["collects"]["institution_id"]` is the collected lender's key; for a line a collector holds,
    `doc["handed_to"]["institution_id"]` is that collector's key (see the module docstring).
    """

    institution: str
    doc: dict[str, Any]

    @property
    def collects_key(self) -> str | None:
        """The key of the lender whose line this collection claim collects (None for other lines)."""
        collects = self.doc.get("collects")
        return collects["institution_id"] if collects else None

    @property
    def handed_to_key(self) -> str | None:
        """The key of the collector whose claim holds this line now (None for other lines)."""
        handed_to = self.doc.get("handed_to")
        return handed_to["institution_id"] if handed_to else None


def resolve_institution_ids(doc: dict[str, Any], ids: Mapping[str, str]) -> dict[str, Any]:
    """The doc with the institution keys in `collects` and `handed_to` replaced by those institutions' ids
    from `ids`.

    Returns `doc` itself when it names no other line, else a shallow copy; raises KeyError for a key
    missing from `ids`.
    """
    named = [f for f in ("collects", "handed_to") if doc.get(f)]
    if not named:
        return doc
    out = dict(doc)
    for f in named:
        out[f] = {"institution_id": ids[doc[f]["institution_id"]], "external_ref": doc[f]["external_ref"]}
    return out


# --------------------------------------------------------------------------------------------
# Countries and figures
# --------------------------------------------------------------------------------------------

# country -> (currency, amount factor against SEK, rate shift in bp, late-payment interest in bp)
_COUNTRIES: dict[str, tuple[str, float, int, int]] = {
    "SE": ("SEK", 1.0, 0, 1000),
    "NO": ("NOK", 1.0, 120, 1250),
    "FI": ("EUR", 0.09, -30, 1150),
    "DK": ("DKK", 0.65, -20, 1000),
    "PL": ("PLN", 0.25, 350, 1150),
}

_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_ROLES = ("lender", "collector")


def _cum(*percent: int) -> tuple[float, ...]:
    """Cumulative percentages as fractions, for bisect(table, random())."""
    return tuple(p / percent[-1] for p in percent[:-1])


# Age bands (inclusive) with their share of adults, and the chance of having any debt in each.
_AGE_BANDS = ((18, 24), (25, 34), (35, 44), (45, 54), (55, 64), (65, 74), (75, 95))
_AGE_STARTS = tuple(lo for lo, _ in _AGE_BANDS)
_AGE_CUM = _cum(10, 27, 43, 59, 74, 88, 100)
_HAS_DEBT = (0.55, 0.78, 0.80, 0.78, 0.70, 0.50, 0.30)
_STUDENT = (0.45, 0.55, 0.35, 0.12, 0.0, 0.0, 0.0)

_COUPLE = 0.45
_JOINT_MORTGAGE = 0.70
_OWN_MORTGAGE = 0.17
_JOINT_VEHICLE = 0.35
_VEHICLE = (0.10, 0.12, 0.10)  # by appetite: low, medium, high
_APPETITE_CUM = _cum(60, 88, 100)

# Counts by appetite, as cumulative percentages of 0, 1, 2, 3.
_CARDS = (_cum(45, 85, 97, 100), _cum(30, 70, 90, 100), _cum(20, 55, 80, 100))
_LOANS = (_cum(85, 98, 100, 100), _cum(55, 88, 98, 100), _cum(25, 60, 85, 100))
_BNPL = (_cum(80, 95, 100, 100), _cum(60, 85, 95, 100), _cum(40, 65, 85, 100))
_REVOLVING = (0.03, 0.12, 0.35)
_OVERDRAFT = (0.04, 0.08, 0.20)
_LOAN_RATE = ((490, 990), (790, 1490), (1290, 2490))
_INSTALMENT_YEARS = (1, 2, 3, 5, 7, 10, 12, 15)
_MORTGAGE_YEARS = (25, 30, 35, 40, 50)
_CARD_LIMITS = (5e3, 1e4, 1.5e4, 2e4, 2.5e4, 3e4, 4e4, 5e4, 7.5e4, 1e5)
_OVERDRAFT_LIMITS = (5e3, 1e4, 2e4, 3e4, 5e4)
# Medians (SEK) of the lognormal amounts, as logarithms.
_LN_MORTGAGE = math.log(2.0e6)
_LN_VEHICLE = math.log(2.5e5)
_LN_INSTALMENT = math.log(6e4)
_LN_STUDENT = math.log(1.8e5)
_LN_REVOLVING = math.log(5e4)
_LN_BNPL = math.log(1200)

_TROUBLE = (0.004, 0.03, 0.12)
_TROUBLE_FACTOR = {"mortgage": 0.25, "buy_now_pay_later": 1.5, "student_loan": 1.2}
# Of troubled credits: overdue, in_collection, written_off, payment_plan, enforcement (cumulative %).
_TROUBLE_CUM = _cum(55, 77, 84, 92, 100)
_TROUBLE_STATUS = ("overdue", "in_collection", "written_off", "payment_plan", "enforcement")
_COLLECTED = frozenset({"in_collection", "written_off"})  # a collector's claim collects these
_NOT_SOLD = frozenset({"mortgage", "student_loan"})  # never with a collector: overdue or enforcement instead
_TERMINATED_DPD = {"in_collection": (75, 326), "written_off": (180, 721), "enforcement": (120, 781)}
_CLAIM_CUM = _cum(70, 90, 100)
_CLAIM_STATUS = ("in_collection", "payment_plan", "enforcement")

_GUARANTEE_YOUNG = 0.12
_GUARANTEE = 0.02
_RECENT = 64

_CONSENT_CUM = _cum(80, 88, 96, 100)
_CARD_LIMIT_CUM = _cum(8, 22, 32, 50, 58, 72, 78, 90, 96, 100)
_TIMES = tuple(f"T{8 + m // 60:02d}:{m % 60:02d}:" for m in range(14 * 60))  # consents: 08:00-22:00 UTC
_SECONDS = tuple(f"{sec:02d}Z" for sec in range(60))
_CONSENT_METHOD = ("e_signature", "online_form", "paper_signature", "recorded_call")

_MONTH = 30.436875  # days
_YEAR = 365.2425
_MIN_OPEN_BACK = 4  # days before as_of: keeps opened_on and given_at before every line's as_of


def _nice_step(value: float) -> int:
    """The largest 1/2/5 x 10^k not above `value` (at least 1)."""
    if value < 1:
        return 1
    exp = 10 ** int(math.floor(math.log10(value)))
    for m in (5, 2, 1):
        if m * exp <= value:
            return m * exp
    return exp  # pragma: no cover


# --------------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------------


def _check_institutions(institutions: tuple[InstitutionSpec, ...]) -> None:
    keys = set()
    valid_kinds = {k.value for k in Kind}
    for spec in institutions:
        if not _KEY.match(spec.key):
            raise ValueError(f"institution key {spec.key!r}: lower-case letters, digits and _ (max 40)")
        if spec.key in keys:
            raise ValueError(f"institution key {spec.key!r} appears twice")
        keys.add(spec.key)
        if spec.role not in _ROLES:
            raise ValueError(f"institution {spec.key!r}: role must be lender or collector")
        for kind in spec.kinds:
            if kind not in valid_kinds:
                raise ValueError(f"institution {spec.key!r}: unknown kind {kind!r}")
        if not spec.share > 0:
            raise ValueError(f"institution {spec.key!r}: share must be positive")


def generate(
    persons: int,
    *,
    seed: int = 1,
    country: str = "SE",
    as_of: datetime | None = None,
    institutions: tuple[InstitutionSpec, ...] = DEFAULT_INSTITUTIONS,
    ref_prefix: str = "",
) -> Iterator[Line]:
    """Stream the report lines of `persons` synthetic adults of `country` and their debts.

    Deterministic for `(persons, seed, country, as_of, institutions)`. `as_of` (default DEFAULT_AS_OF;
    a naive datetime is taken as UTC) is when the reports are made; each line's `as_of` is 0-3 days
    before it. A kind no lender in `institutions` reports is not generated; without a collector no
    collection claims are. `ref_prefix` goes before every external ref, so that populations of several
    seeds can be loaded into one register without their refs meeting. Arguments are checked here.
    """
    if not re.fullmatch(r"[A-Za-z0-9._:\-]{0,40}", ref_prefix):
        raise ValueError("ref_prefix may hold only letters, digits and . _ : - (at most 40)")
    if not isinstance(persons, int) or persons < 0:
        raise ValueError("persons must be a non-negative integer")
    if country not in _COUNTRIES:
        raise ValueError(f"country must be one of {', '.join(sorted(_COUNTRIES))}")
    at = DEFAULT_AS_OF if as_of is None else as_of
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    institutions = tuple(institutions)
    _check_institutions(institutions)
    return _generate(persons, seed, country, at, institutions, ref_prefix)


def _generate(
    persons: int, seed: int, country: str, at: datetime, institutions: tuple[InstitutionSpec, ...],
    ref_prefix: str = "",
) -> Iterator[Line]:
    # Written for speed (a million persons in under 40 s on a small shared VM): closures over locals, one
    # dict per line built once, and few calls per line.
    rng = random.Random(f"register.population:{seed}:{country}")
    rand = rng.random
    lognorm = rng.lognormvariate
    currency, factor, shift, late_bp = _COUNTRIES[country]
    unit = 10 ** MINOR_UNITS[currency]
    asof_ord = at.date().toordinal()
    open_max = asof_ord - _MIN_OPEN_BACK  # the latest opened_on

    days: dict[int, str] = {}  # day ordinal -> ISO date
    day_of = days.get

    def day(ordinal: int) -> str:
        s = day_of(ordinal)
        if s is None:
            s = days[ordinal] = date.fromordinal(ordinal).isoformat()
        return s

    # Each line's as_of: 0-3 days before `at`, to the minute.
    base = at.replace(second=0, microsecond=0)
    as_ofs = [(base - timedelta(minutes=m)).strftime("%Y-%m-%dT%H:%M:%SZ") for m in range(3 * 1440 + 1)]
    n_as_ofs = len(as_ofs)

    # Institutions: lenders by kind (keys and cumulative shares), collectors, names, ref counters.
    names = {s.key: s.name for s in institutions}
    prefixes = {s.key: ref_prefix + s.key.upper() + "-" for s in institutions}
    counters = dict.fromkeys(names, 0)

    def shares(specs: list[InstitutionSpec]) -> tuple[tuple[str, ...], tuple[float, ...]]:
        total = sum(s.share for s in specs)
        cum, acc = [], 0.0
        for s in specs[:-1]:
            acc += s.share
            cum.append(acc / total)
        return tuple(s.key for s in specs), tuple(cum)

    lenders = {
        kind.value: shares(specs)
        for kind in Kind
        if kind is not Kind.collection_claim
        for specs in [[s for s in institutions if s.role == "lender" and kind.value in s.kinds]]
        if specs
    }
    collector_specs = [s for s in institutions if s.role == "collector" and "collection_claim" in s.kinds]
    collectors = shares(collector_specs)
    has_collector = bool(collector_specs)

    def lender(kind: str) -> str | None:
        entry = lenders.get(kind)
        if entry is None:
            return None
        keys, cum = entry
        return keys[bisect(cum, rand())] if cum else keys[0]

    trouble_p = [{k.value: _TROUBLE[a] * _TROUBLE_FACTOR.get(k.value, 1.0) for k in Kind} for a in range(3)]

    # Money: SEK figures scaled to the country, rounded to a nice local step, in minor units.
    steps: dict[int, int] = {}

    def money(sek: float, step_sek: int) -> int:
        step = steps.get(step_sek)
        if step is None:
            step = steps[step_sek] = _nice_step(step_sek * factor)
        return max(1, round(sek * factor / step)) * step * unit

    small_debt = money(1000, 100)  # a troubled credit owes at least this
    collection_fee = money(240, 10)  # reminder and collection fees on a claim
    card_min_pay, credit_min_pay = money(200, 10), money(300, 10)  # minimum monthly payments

    def whole(minor: float) -> int:
        """Minor units rounded to a whole major unit (payments)."""
        return max(unit, round(minor / unit) * unit)

    def rate(low: int, high: int) -> int:
        return max(0, low + int(rand() * ((high - low) // 10 + 1)) * 10 + shift)

    # Identity numbers, unique within the run: a bitmap of 2^k >= 32 * persons bits over crc32 (a hit
    # may be a false positive, at most one in 32; drawing again keeps every number distinct).
    bits = 1 << max(16, min(32, (32 * max(persons, 1) - 1).bit_length()))
    seen = bytearray(bits >> 3)
    mask = bits - 1
    crc32 = zlib.crc32

    def new_person(age: int = 0) -> list[Any]:
        """[national id, age, age band, has debts, appetite (0-2, -1 without debts)]"""
        if age:
            band = bisect(_AGE_STARTS, age) - 1
        else:
            band = bisect(_AGE_CUM, rand())
            lo, hi = _AGE_BANDS[band]
            age = lo + int(rand() * (hi - lo + 1))
        has_debt = rand() < _HAS_DEBT[band]
        appetite = bisect(_APPETITE_CUM, rand()) if has_debt else -1
        while True:
            born = date.fromordinal(asof_ord - int((age + rand()) * _YEAR))
            for _ in range(20):
                nid = generate_national_id(country, rng, birth_date=born)
                h = crc32(nid.encode()) & mask
                byte, bit = h >> 3, 1 << (h & 7)
                if not seen[byte] & bit:
                    seen[byte] |= bit
                    return [nid, age, band, has_debt, appetite]

    recent: list[tuple[str, int]] = []  # (national id, age) of the last persons, for guarantors
    out: list[Line] = []  # the current person's lines

    def guarantor(primary_age: int, exclude: tuple[str, ...]) -> str | None:
        for _ in range(8 if recent else 0):
            nid, age = recent[int(rand() * len(recent))]
            if nid not in exclude and (primary_age >= 30 or age >= 45):
                return nid
        return None

    def loan_debtors(primary: str, co: str | None, age: int) -> list[dict[str, str]]:
        ds = [{"country": country, "national_id": primary, "role": "primary"}]
        if co is not None:
            ds.append({"country": country, "national_id": co, "role": "co_debtor"})
        if rand() < (_GUARANTEE_YOUNG if age < 30 else _GUARANTEE):
            g = guarantor(age, (primary, co) if co else (primary,))
            if g is not None:
                ds.append({"country": country, "national_id": g, "role": "guarantor"})
        return ds

    def doc_of(kind: str, original: int | None, balance: int, limit: int | None, payment: int | None,
               rate_bp: int, debtors: list[dict[str, str]]) -> dict[str, Any]:  # fmt: skip
        """A current line; emit() fills in the reference, the dates, the consent and as_of."""
        return {
            "external_ref": "",
            "kind": kind,
            "currency": currency,
            "original_amount": original,
            "balance": balance,
            "credit_limit": limit,
            "monthly_payment": payment,
            "interest_rate_bp": rate_bp,
            "opened_on": None,
            "matures_on": None,
            "status": "current",
            "overdue_amount": 0,
            "days_past_due": 0,
            "original_creditor": None,
            "collects": None,
            "handed_to": None,
            "debtors": debtors,
            "registration_consent": None,
            "as_of": "",
        }

    def emit(key: str, appetite: int, doc: dict[str, Any], opened_ord: int, matures_ord: int | None) -> None:
        """Give the line its reference and (rarely) trouble, and append it, and a collector's claim."""
        n = counters[key] + 1
        counters[key] = n
        ref = doc["external_ref"] = f"{prefixes[key]}{n:08d}"
        if rand() < trouble_p[appetite][doc["kind"]] and (doc["monthly_payment"] != 0 or doc["credit_limit"]):
            opened_ord, matures_ord = fall_behind(doc, opened_ord, matures_ord)
        opened = doc["opened_on"] = day_of(opened_ord) or day(opened_ord)
        if matures_ord is not None:
            doc["matures_on"] = day_of(matures_ord) or day(matures_ord)
        secs = int(rand() * 50_400)
        doc["registration_consent"] = {
            "reference": f"AGR-{n:08d}",
            "given_at": opened + _TIMES[secs // 60] + _SECONDS[secs % 60],
            "method": _CONSENT_METHOD[bisect(_CONSENT_CUM, rand())],
        }
        doc["as_of"] = as_ofs[int(rand() * n_as_ofs)]
        out.append(Line(key, doc))
        if doc["status"] in _COLLECTED:
            claim(key, ref, doc, opened_ord)

    def fall_behind(doc: dict[str, Any], opened_ord: int, matures_ord: int | None) -> tuple[int, int | None]:
        status = _TROUBLE_STATUS[bisect(_TROUBLE_CUM, rand())]
        kind, limit = doc["kind"], doc["credit_limit"]
        if status in _COLLECTED and (kind in _NOT_SOLD or not has_collector):
            status = "overdue" if kind == "mortgage" else "enforcement"
        balance, payment = doc["balance"], doc["monthly_payment"]
        if limit is not None:  # troubled revolving credit is (nearly) maxed out
            balance = max(balance, int(limit * (0.85 + 0.20 * rand())))
            if payment is not None:
                payment = max(payment, min(balance, whole(balance * 0.03)))
        if balance <= 0:
            balance = min(doc["original_amount"] or small_debt, small_debt)
        dpd = overdue = 0
        if status == "overdue":
            r = rand()
            dpd = 30 + int(rand() * 30) if r < 0.5 else 60 + int(rand() * 30) if r < 0.75 else 90 + int(rand() * 91)
            overdue = min(balance, (payment or whole(balance * 0.05)) * -(-dpd // 30))
        elif status == "payment_plan":
            if payment:
                payment = whole(payment * (0.5 + 0.3 * rand()))
        else:  # in_collection, written_off, enforcement: terminated, the whole balance is due
            low, span = _TERMINATED_DPD[status]
            dpd = low + int(rand() * span)
            overdue = balance
            if payment is not None:
                payment = 0
        # A credit falls behind only after its first payment was due: a young one is older than drawn.
        late = dpd + 30 - (asof_ord - opened_ord)
        if late > 0:
            opened_ord -= late
            if matures_ord is not None:
                matures_ord -= late
        doc["status"], doc["balance"], doc["monthly_payment"] = status, balance, payment
        doc["overdue_amount"], doc["days_past_due"] = overdue, dpd
        return opened_ord, matures_ord

    def claim(lender_key: str, lender_ref: str, collected: dict[str, Any], opened_ord: int) -> None:
        keys, cum = collectors
        key = keys[bisect(cum, rand())] if cum else keys[0]
        n = counters[key] + 1
        counters[key] = n
        status = _CLAIM_STATUS[bisect(_CLAIM_CUM, rand())]
        claim_ref = f"{prefixes[key]}{n:08d}"
        collected["handed_to"] = {"institution_id": key, "external_ref": claim_ref}  # the lender names it back
        handed_over = collected["balance"]
        balance = int(handed_over * (1.02 + 0.13 * rand())) + collection_fee  # interest and fees
        dpd = collected["days_past_due"]
        opened = max(opened_ord + 30, asof_ord - max(_MIN_OPEN_BACK, dpd - 60))
        if status == "payment_plan":
            payment, overdue, claim_dpd = whole(balance / (6 + int(rand() * 55))), 0, 0
        else:
            payment, overdue, claim_dpd = None, balance, dpd
        out.append(Line(key, {
            "external_ref": claim_ref,
            "kind": "collection_claim",
            "currency": currency,
            "original_amount": handed_over,
            "balance": balance,
            "credit_limit": None,
            "monthly_payment": payment,
            "interest_rate_bp": late_bp,
            "opened_on": day_of(opened) or day(opened),
            "matures_on": None,
            "status": status,
            "overdue_amount": overdue,
            "days_past_due": claim_dpd,
            "original_creditor": names[lender_key],
            "collects": {"institution_id": lender_key, "external_ref": lender_ref},
            "handed_to": None,
            "debtors": [dict(d) for d in collected["debtors"]],
            "registration_consent": dict(collected["registration_consent"]),
            "as_of": as_ofs[int(rand() * n_as_ofs)],
        }))  # fmt: skip

    def annuity(principal: int, rate_bp: int, months: int) -> float:
        r = rate_bp / 120_000
        if r == 0:
            return principal / months
        return principal * r / (1 - (1 + r) ** -months)

    def remaining(principal: int, rate_bp: int, months: int, paid: int, payment: float) -> int:
        if paid >= months:
            return 0
        r = rate_bp / 120_000
        if r == 0:
            return round(principal * (months - paid) / months)
        f = (1 + r) ** paid
        return max(0, round(principal * f - payment * (f - 1) / r))

    def amortised(key: str, kind: str, principal: int, rate_bp: int, term: int, back_max: float,
                  debtors: list[dict[str, str]], appetite: int) -> None:  # fmt: skip
        """A loan repaid by annuity, opened 0..term months ago (at most back_max days)."""
        back = _MIN_OPEN_BACK + int(rand() * min(term * _MONTH, back_max))
        opened_ord = asof_ord - back
        pay = annuity(principal, rate_bp, term)
        balance = remaining(principal, rate_bp, term, int(back / _MONTH), pay)
        payment = whole(pay)
        if balance <= 0:
            balance = min(principal, payment)
        doc = doc_of(kind, principal, balance, None, payment, rate_bp, debtors)
        emit(key, appetite, doc, opened_ord, opened_ord + round(term * _MONTH))

    def mortgage(person: list[Any], partner: list[Any] | None) -> None:
        key = lender("mortgage")
        if key is None:
            return
        age = person[1] if partner is None else min(person[1], partner[1])
        principal = money(min(1.2e7, max(3e5, lognorm(_LN_MORTGAGE, 0.5))), 10_000)
        term = 12 * _MORTGAGE_YEARS[int(rand() * len(_MORTGAGE_YEARS))]
        debtors = loan_debtors(person[0], partner[0] if partner else None, age)
        appetite = max(person[4], partner[4]) if partner else person[4]
        amortised(key, "mortgage", principal, rate(250, 550), term, max(30.0, (age - 22) * _YEAR), debtors, appetite)

    def vehicle(person: list[Any], partner: list[Any] | None) -> None:
        key = lender("vehicle_loan")
        if key is None:
            return
        age = person[1]
        principal = money(min(1.2e6, max(5e4, lognorm(_LN_VEHICLE, 0.4))), 1000)
        term = 12 * (3 + int(rand() * 5))
        debtors = loan_debtors(person[0], partner[0] if partner else None, age)
        appetite = max(person[4], partner[4]) if partner else person[4]
        amortised(key, "vehicle_loan", principal, rate(390, 990), term, (age - 18) * _YEAR + 30, debtors, appetite)

    def instalment(person: list[Any]) -> None:
        key = lender("instalment_loan")
        if key is None:
            return
        nid, age, _, _, appetite = person
        sek = min(6e5, max(5e3, lognorm(_LN_INSTALMENT, 0.8)))
        principal = money(sek, 5000 if sek >= 1e5 else 1000)
        low, high = (0, 4) if sek < 3e4 else (2, 6) if sek < 1.5e5 else (3, 8)
        term = 12 * _INSTALMENT_YEARS[low + int(rand() * (high - low))]
        low_bp, high_bp = _LOAN_RATE[appetite]
        debtors = loan_debtors(nid, None, age)
        amortised(key, "instalment_loan", principal, rate(low_bp, high_bp), term, (age - 18) * _YEAR + 30, debtors,
                  appetite)  # fmt: skip

    def student(person: list[Any]) -> None:
        key = lender("student_loan")
        if key is None:
            return
        nid, age, _, _, appetite = person
        principal = money(min(6e5, max(2e4, lognorm(_LN_STUDENT, 0.5))), 1000)
        start_age = min(age, 19 + int(rand() * 4))
        opened_ord = min(open_max, asof_ord - int((age - start_age + rand()) * _YEAR))
        study_days = int((3 + int(rand() * 3)) * _YEAR)
        repay_ord = opened_ord + study_days + 183
        term = 300
        rate_bp = max(0, rate(100, 250) - shift + shift // 4)  # follows the state's rate, not the market's
        pay = annuity(principal, rate_bp, term)
        if asof_ord < repay_ord:  # still studying: drawn so far, nothing to pay yet
            balance = max(unit, int(principal * min(1.0, max(0.1, (asof_ord - opened_ord) / study_days))))
            payment = 0
        else:
            balance = remaining(principal, rate_bp, term, int((asof_ord - repay_ord) / _MONTH), pay)
            if balance <= 0:
                return  # repaid
            payment = whole(pay)
        doc = doc_of("student_loan", principal, balance, None, payment, rate_bp,
                     [{"country": country, "national_id": nid, "role": "primary"}])
        emit(key, appetite, doc, opened_ord, repay_ord + round(term * _MONTH))

    def revolving(key: str, kind: str, person: list[Any], limit: int, used: float, rate_bp: int,
                  pay_share: float, min_pay: int) -> None:  # fmt: skip
        """A credit line; pay_share 0 means no fixed monthly payment (an overdraft)."""
        nid, age = person[0], person[1]
        opened_ord = open_max - int(rand() * min(20, age - 17) * _YEAR)
        balance = min(limit, int(limit * used) // unit * unit + int(rand() * unit)) if used else 0
        payment = None
        if pay_share:
            payment = min(balance, max(min_pay, whole(balance * pay_share))) if balance else 0
        doc = doc_of(kind, None, balance, limit, payment, rate_bp,
                     [{"country": country, "national_id": nid, "role": "primary"}])
        emit(key, person[4], doc, opened_ord, None)

    def card(person: list[Any]) -> None:
        key = lender("credit_card")
        if key is None:
            return
        limit = money(_CARD_LIMITS[bisect(_CARD_LIMIT_CUM, rand())], 1000)
        used = 0.0 if rand() < 0.40 else min(1.0, rand() ** (1.6 - 0.4 * person[4]))
        revolving(key, "credit_card", person, limit, used, rate(1490, 2490), 0.03, card_min_pay)

    def account_credit(person: list[Any]) -> None:
        key = lender("revolving_credit")
        if key is None:
            return
        limit = money(min(3e5, max(1e4, lognorm(_LN_REVOLVING, 0.6))), 5000)
        revolving(key, "revolving_credit", person, limit, 0.3 + 0.7 * rand(), rate(890, 1990), 0.02, credit_min_pay)

    def overdraft(person: list[Any]) -> None:
        key = lender("overdraft")
        if key is None:
            return
        limit = money(_OVERDRAFT_LIMITS[int(rand() * len(_OVERDRAFT_LIMITS))], 1000)
        used = rand() if rand() < 0.7 else 0.0
        revolving(key, "overdraft", person, limit, used, rate(900, 1500), 0.0, 0)

    def bnpl(person: list[Any]) -> None:
        key = lender("buy_now_pay_later")
        if key is None:
            return
        nid, appetite = person[0], person[4]
        sek = min(25_000.0, max(99.0, lognorm(_LN_BNPL, 0.9)))
        amount = max(unit, round(sek * factor) * unit)
        debtors = [{"country": country, "national_id": nid, "role": "primary"}]
        r = rand()
        if r < 0.55:  # an invoice, due in 30 days
            opened_ord = asof_ord - _MIN_OPEN_BACK - int(rand() * 26)
            emit(key, appetite, doc_of("buy_now_pay_later", amount, amount, None, amount, 0, debtors),
                 opened_ord, opened_ord + 30)
        elif r < 0.80 or sek < 1500:  # split in 3 monthly payments, interest-free
            back = _MIN_OPEN_BACK + int(rand() * 85)
            pay = -(-amount // 3)
            balance = amount - pay * min(2, int(back / _MONTH))
            opened_ord = asof_ord - back
            emit(key, appetite, doc_of("buy_now_pay_later", amount, balance, None, pay, 0, debtors),
                 opened_ord, opened_ord + round(3 * _MONTH))
        else:  # part payment
            term = (12, 24, 36)[int(rand() * 3)]
            amortised(key, "buy_now_pay_later", amount, rate(1990, 2490), term, 3650.0, debtors, appetite)

    fallbacks = (card, instalment, bnpl, account_credit, overdraft)

    def own_credits(person: list[Any], partner: list[Any] | None, joint_mortgage: bool, is_co_debtor: bool) -> None:
        """The credits of a person with debts. A couple's joint mortgage comes from its first person
        (`partner` is the second); `is_co_debtor`: this person is the second of such a couple."""
        age, band, appetite = person[1], person[2], person[4]
        if joint_mortgage:
            mortgage(person, partner)
        elif not is_co_debtor and 25 <= age <= 80 and rand() < _OWN_MORTGAGE:
            mortgage(person, None)
        if 20 <= age <= 80 and rand() < _VEHICLE[appetite]:
            vehicle(person, partner if partner is not None and rand() < _JOINT_VEHICLE else None)
        if rand() < _STUDENT[band]:
            student(person)
        for _ in range(bisect(_CARDS[appetite], rand())):
            card(person)
        for _ in range(bisect(_LOANS[appetite], rand())):
            instalment(person)
        n_bnpl = bisect(_BNPL[appetite], rand())
        if age < 50 or rand() < 0.5:
            for _ in range(n_bnpl):
                bnpl(person)
        if rand() < _REVOLVING[appetite]:
            account_credit(person)
        if rand() < _OVERDRAFT[appetite]:
            overdraft(person)
        if not out and not is_co_debtor:  # a person with debts has at least one (a card if reported)
            for maker in fallbacks:
                maker(person)
                if out:
                    break

    current = new_person() if persons else []
    partnered = False  # `current` is the partner of the previous person
    is_co_debtor = False  # ... and the co-debtor of its mortgage
    for i in range(persons):
        partner = None
        joint_mortgage = False
        if not partnered and i + 1 < persons and current[1] >= 22 and rand() < _COUPLE:
            partner = new_person(max(18, min(95, current[1] + int(rand() * 11) - 5)))
            joint_mortgage = (current[3] and partner[3] and 23 <= current[1] <= 80 and 23 <= partner[1] <= 80
                              and rand() < _JOINT_MORTGAGE)  # fmt: skip
        if current[3]:
            own_credits(current, partner if partner and partner[3] else None, joint_mortgage, is_co_debtor)
            if out:
                yield from out
                out.clear()
        recent.append((current[0], current[1]))
        if len(recent) > _RECENT:
            del recent[0]
        if partner is not None:
            current, partnered, is_co_debtor = partner, True, joint_mortgage
        else:
            current = new_person() if i + 1 < persons else []
            partnered = is_co_debtor = False


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------

CSV_COLUMNS: tuple[str, ...] = (
    "external_ref", "kind", "currency", "original_amount", "balance", "credit_limit", "monthly_payment",
    "interest_rate_bp", "opened_on", "matures_on", "status", "overdue_amount", "days_past_due",
    "original_creditor", "collects_institution_id", "collects_external_ref", "handed_to_institution_id",
    "handed_to_external_ref", "debtors", "registration_consent_reference", "registration_consent_given_at", "registration_consent_method", "as_of",
)  # fmt: skip

_INT_COLUMNS = frozenset(
    {"original_amount", "balance", "credit_limit", "monthly_payment", "interest_rate_bp", "overdue_amount",
     "days_past_due"}
)  # fmt: skip
_PLAIN_COLUMNS = ("external_ref", "kind", "currency", "original_amount", "balance", "credit_limit",
                  "monthly_payment", "interest_rate_bp", "opened_on", "matures_on", "status", "overdue_amount",
                  "days_past_due", "original_creditor")  # fmt: skip
_INT = re.compile(r"^-?[0-9]+$")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        raise ValueError("booleans have no CSV spelling here")
    return str(value)


def to_csv_row(doc: Mapping[str, Any]) -> list[str]:
    """One report line (the JSON shape) as a CSV row in CSV_COLUMNS order; null is the empty cell.

    Debtors are `COUNTRY:NUMBER:ROLE` joined by `|`; a part containing `:` or `|` (or empty) cannot be
    written and raises ValueError, as does an empty string value (it would read back as null).
    """
    row = []
    for column in _PLAIN_COLUMNS:
        value = doc.get(column)
        if value == "":
            raise ValueError(f"{column}: an empty string cannot be told from null in CSV")
        row.append(_cell(value))
    for name in ("collects", "handed_to"):
        ref = doc.get(name)
        if ref:
            for part in ("institution_id", "external_ref"):
                if not ref.get(part):
                    raise ValueError(f"{name}.{part} is required")
            row += [str(ref["institution_id"]), str(ref["external_ref"])]
        else:
            row += ["", ""]
    parts = []
    for d in doc.get("debtors") or ():
        bits = (d["country"], d["national_id"], d["role"])
        if any(not b or ":" in b or "|" in b for b in bits):
            raise ValueError("a debtor's country, number or role is empty or contains ':' or '|'")
        parts.append(":".join(bits))
    row.append("|".join(parts))
    cons = doc.get("registration_consent")
    if cons:
        for part in ("reference", "given_at", "method"):
            if cons.get(part) in (None, ""):
                raise ValueError(f"registration_consent.{part} is required")
        row += [str(cons["reference"]), str(cons["given_at"]), str(cons["method"])]
    else:
        row += ["", "", ""]
    as_of = doc.get("as_of")
    if as_of == "":
        raise ValueError("as_of: an empty string cannot be told from null in CSV")
    row.append(_cell(as_of))
    return row


def from_csv_row(row: Mapping[str, str]) -> dict[str, Any]:
    """A CSV row (a csv.DictReader dict) back to the JSON shape: every field present, null for an empty
    (or missing) cell, integers for the integer columns. Raises ValueError for a malformed cell."""
    doc: dict[str, Any] = {}
    for column in _PLAIN_COLUMNS:
        value = row.get(column) or ""
        if value == "":
            doc[column] = None
        elif column in _INT_COLUMNS:
            if not _INT.match(value):
                raise ValueError(f"{column} is not an integer")
            doc[column] = int(value)
        else:
            doc[column] = value
    for name in ("collects", "handed_to"):
        inst, ref = row.get(f"{name}_institution_id") or "", row.get(f"{name}_external_ref") or ""
        if inst or ref:
            if not (inst and ref):
                raise ValueError(f"{name} needs both {name}_institution_id and {name}_external_ref")
            doc[name] = {"institution_id": inst, "external_ref": ref}
        else:
            doc[name] = None
    debtors_cell = row.get("debtors") or ""
    debtors = []
    if debtors_cell:
        for part in debtors_cell.split("|"):
            bits = part.split(":")
            if len(bits) != 3:
                raise ValueError("debtors are COUNTRY:NUMBER:ROLE separated by |")
            debtors.append({"country": bits[0], "national_id": bits[1], "role": bits[2]})
    doc["debtors"] = debtors
    cons = [row.get(f"registration_consent_{p}") or "" for p in ("reference", "given_at", "method")]
    if any(cons):
        if not all(cons):
            raise ValueError("registration_consent needs reference, given_at and method")
        doc["registration_consent"] = {"reference": cons[0], "given_at": cons[1], "method": cons[2]}
    else:
        doc["registration_consent"] = None
    doc["as_of"] = row.get("as_of") or None
    corrects = row.get("corrects_dispute") or ""  # optional column: a dispute this line corrects
    if corrects:
        doc["corrects_dispute"] = corrects
    return doc


def write_report_files(lines: Iterable[Line], directory: Path, *, fmt: str = "ndjson") -> dict[str, Path]:
    """Stream `lines` into one file per institution, `<key>.ndjson` or `<key>.csv` (with a header row),
    in `directory` (created if missing; existing files of those names are replaced). Returns
    key -> path for every institution that had at least one line."""
    if fmt not in ("ndjson", "csv"):
        raise ValueError("fmt must be ndjson or csv")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files: dict[str, IO[str]] = {}
    writers: dict[str, Any] = {}
    paths: dict[str, Path] = {}
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    try:
        for line in lines:
            key = line.institution
            fh = files.get(key)
            if fh is None:
                if not _KEY.match(key):
                    raise ValueError(f"institution key {key!r} cannot name a file")
                path = directory / f"{key}.{fmt}"
                fh = files[key] = path.open("w", encoding="utf-8", newline="", buffering=1 << 20)
                paths[key] = path
                if fmt == "csv":
                    writers[key] = csv.writer(fh, lineterminator="\n")
                    writers[key].writerow(CSV_COLUMNS)
            if fmt == "csv":
                writers[key].writerow(to_csv_row(line.doc))
            else:
                fh.write(dumps(line.doc))
                fh.write("\n")
    finally:
        for fh in files.values():
            fh.close()
    return paths
