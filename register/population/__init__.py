"""A synthetic national population of consumers and their debts, as report lines per institution.

`generate(persons, seed=..., country=...)` streams `Line`s: one report line (the JSON shape of a batch
report line: the `ObligationReport` fields plus `external_ref`) and the key of the institution that
reports it. It is deterministic for `(persons, seed, country, as_of)` and streaming: persons are made one
at a time from one seeded RNG, and the generator keeps only a handful of persons (the next one, for
couples, and the last 64, for guarantors) plus a bitmap of 4-8 bytes per person that keeps identity
numbers unique (its size depends on `persons`, so a smaller run is not a prefix of a larger one).
`write_report_files` streams the lines into one NDJSON or CSV file per institution.

Pure package: stdlib and `register.domain` only (no database, no web framework). Its modules, by what they
make: `figures` (the figures below), `market` (institutions, `Line`), `run` (one run's RNG, money, calendar),
`persons`, `debts` (which credits a person has) and the kind families `loans`, `credit_lines`, `purchases`,
`lines` (a line's reference, consent, as_of) and `arrears` (falling behind, collection claims), `generator`
(`generate`) and `files`.

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

from register.population.figures import DEFAULT_AS_OF
from register.population.files import CSV_COLUMNS, from_csv_row, to_csv_row, write_report_files
from register.population.generator import generate
from register.population.market import DEFAULT_INSTITUTIONS, InstitutionSpec, Line, resolve_institution_ids

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
