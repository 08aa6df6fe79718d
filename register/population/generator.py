"""The generator: checks the arguments, then walks the persons of one run and their debts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

from register.population.debts import credits_maker
from register.population.figures import _COUNTRIES, DEFAULT_AS_OF
from register.population.market import DEFAULT_INSTITUTIONS, InstitutionSpec, Line, check_institutions
from register.population.persons import person_maker, walk
from register.population.run import start_run

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
    check_institutions(institutions)
    return _generate(persons, seed, country, at, institutions, ref_prefix)



def _generate(
    persons: int, seed: int, country: str, at: datetime, institutions: tuple[InstitutionSpec, ...],
    ref_prefix: str = "",
) -> Iterator[Line]:
    # A generator, so that nothing (the identity bitmap, the calendar) is set up before the first line is asked for.
    run = start_run(seed, country, at, institutions, ref_prefix)
    new_person = person_maker(run, persons)
    own_credits = credits_maker(run)
    yield from walk(run, persons, new_person, own_credits)
