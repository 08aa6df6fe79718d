"""National identity numbers: parsing, normalisation, masking and synthetic generation.

This package is the one place in the register that knows the rules of each country's identity number,
one module per country: `se` (personnummer/samordningsnummer), `no` (fødselsnummer/D-nummer), `fi`
(henkilötunnus), `dk` (CPR), `pl` (PESEL). When a rule changes (Norway changes its check-digit rule in
2032) it changes in that country's module and nowhere else. `national_id` holds the registry of
countries and the entry points below; `rule` what a country module builds.

Identity numbers are the most sensitive data the register holds, so:

* `NationalId.__repr__`/`__str__` show only the country and the masked birth-date part;
* `InvalidNationalId` carries a short reason and the country, never the input;
* stdnum's exceptions are not chained into ours (their messages hold no number either, but a
  traceback should not need reading to be sure of that).

Pure package: stdlib and python-stdnum only.
"""

from register.domain.identity.national_id import (
    SUPPORTED_COUNTRIES,
    NationalId,
    generate_national_id,
    is_test_number,
    parse_national_id,
)
from register.domain.identity.rule import InvalidNationalId

__all__ = [
    "SUPPORTED_COUNTRIES",
    "InvalidNationalId",
    "NationalId",
    "generate_national_id",
    "is_test_number",
    "parse_national_id",
]
