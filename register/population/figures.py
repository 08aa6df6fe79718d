"""The figures of the synthetic population: countries, age bands, shares and ranges per kind of debt.

Where each figure comes from is told in the package docstring (register/population/__init__.py).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

DEFAULT_AS_OF = datetime(2026, 11, 1, tzinfo=UTC)

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

