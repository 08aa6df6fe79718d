"""Tests for register.domain.identity.

No real person's number appears here: every number is built from chosen parts with stdnum's own
check-digit functions or with the module's generator. The only literal complete numbers are
Norway's published synthetic test number 14842249091 and made-up invalid ones.
"""

from __future__ import annotations

import ast
import pathlib
import random
from datetime import date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import luhn
from stdnum.dk import cpr
from stdnum.fi import hetu
from stdnum.no import fodselsnummer
from stdnum.pl import pesel
from stdnum.se import personnummer

from register.domain.identity import national_id
from register.domain.identity import (
    SUPPORTED_COUNTRIES,
    InvalidNationalId,
    NationalId,
    generate_national_id,
    is_test_number,
    parse_national_id,
)

COUNTRIES = sorted(SUPPORTED_COUNTRIES)
FIXED_TODAY = date(2025, 6, 15)
NO_PUBLISHED_TEST_NUMBER = "14842249091"  # Skatteetaten synthetic (month + 80)
FI_CHECK_CHARS = "0123456789ABCDEFHJKLMNPRSTUVWXY"


# ---------------------------------------------------------------------------------------------
# Builders: valid numbers from chosen parts, check digits computed by stdnum (independent of the
# module's generator).
# ---------------------------------------------------------------------------------------------


def se_number(yymmdd: str, serial: str) -> str:
    """10 digits YYMMDDNNNC."""
    body = yymmdd + serial
    return body + luhn.calc_check_digit(body)


def no_number(ddmmyy: str, individual: int) -> str:
    """11 digits; walks the individual number up until both check digits exist."""
    while True:
        body = f"{ddmmyy}{individual:03d}"
        k1 = fodselsnummer.calc_check_digit1(body)
        if k1 != "10":
            k2 = fodselsnummer.calc_check_digit2(body + k1)
            if k2 != "10":
                return body + k1 + k2
        individual += 1


def fi_number(ddmmyy: str, sign: str, individual: str) -> str:
    return f"{ddmmyy}{sign}{individual}{FI_CHECK_CHARS[int(ddmmyy + individual) % 31]}"


def pl_number(yymmdd: str, serial: str) -> str:
    body = yymmdd + serial
    return body + pesel.calc_check_digit(body)


def wrong_last_digit(number: str) -> str:
    return number[:-1] + str((int(number[-1]) + 1) % 10)


SE_PERSON = se_number("880320", "001")  # born 1988-03-20
NO_PERSON = no_number("150386", 123)  # born 1986-03-15
FI_PERSON = fi_number("150386", "-", "123")  # born 1986-03-15
DK_PERSON = "1503861234"  # born 1986-03-15 (digit 7 = 1: 1900s); CPR has no check digit
PL_PERSON = pl_number("860315", "1234")  # born 1986-03-15

VALID = {
    "SE": (SE_PERSON, "19" + SE_PERSON),
    "NO": (NO_PERSON, NO_PERSON),
    "FI": (FI_PERSON, FI_PERSON),
    "DK": (DK_PERSON, DK_PERSON),
    "PL": (PL_PERSON, PL_PERSON),
}

# A valid number with a wrong check digit, per country (DK has none: an impossible date instead).
WRONG_CHECK = {
    "SE": wrong_last_digit(SE_PERSON),
    "NO": wrong_last_digit(NO_PERSON),
    "FI": FI_PERSON[:-1] + FI_CHECK_CHARS[(FI_CHECK_CHARS.index(FI_PERSON[-1]) + 1) % 31],
    "PL": wrong_last_digit(PL_PERSON),
}


@pytest.fixture
def fixed_today(monkeypatch: pytest.MonkeyPatch) -> date:
    monkeypatch.setattr(national_id, "_today", lambda: FIXED_TODAY)
    return FIXED_TODAY


def assert_refused(country: str, raw: object, reason: str, *, allow_test: bool = False) -> InvalidNationalId:
    with pytest.raises(InvalidNationalId) as info:
        parse_national_id(country, raw, allow_test=allow_test)  # type: ignore[arg-type]
    exc = info.value
    assert exc.reason == reason
    if isinstance(raw, str) and raw.strip():
        for text in (str(exc), repr(exc), *map(str, exc.args)):
            assert raw.strip() not in text
            assert "".join(ch for ch in raw if ch.isdigit()) not in text
    return exc


# ---------------------------------------------------------------------------------------------


class TestCountry:
    def test_supported_countries(self) -> None:
        assert SUPPORTED_COUNTRIES == frozenset({"SE", "NO", "FI", "DK", "PL"})

    def test_unsupported_country_is_refused(self) -> None:
        exc = assert_refused("DE", SE_PERSON, "unsupported country")
        assert exc.country is None

    def test_country_is_case_insensitive(self) -> None:
        assert parse_national_id("se", SE_PERSON) == parse_national_id("SE", SE_PERSON)

    def test_non_string_country_is_refused(self) -> None:
        assert_refused(None, SE_PERSON, "unsupported country")  # type: ignore[arg-type]

    def test_swapped_arguments_do_not_echo_the_number(self) -> None:
        with pytest.raises(InvalidNationalId) as info:
            parse_national_id(SE_PERSON, "SE")
        assert info.value.reason == "unsupported country"
        assert SE_PERSON not in str(info.value)

    def test_exception_is_a_value_error_with_country(self) -> None:
        exc = assert_refused("se", WRONG_CHECK["SE"], "invalid check digit")
        assert isinstance(exc, ValueError)
        assert exc.country == "SE"


class TestParseSE:
    def test_ten_digits_normalise_to_twelve(self) -> None:
        nid = parse_national_id("SE", SE_PERSON)
        assert nid == NationalId("SE", "19" + SE_PERSON)

    @pytest.mark.parametrize(
        "spelling",
        [
            "{yymmdd}-{nnnn}",
            "{yymmdd}{nnnn}",
            "19{yymmdd}{nnnn}",
            "19{yymmdd}-{nnnn}",
            "  {yymmdd}-{nnnn}\n",
            "{yymmdd} {nnnn}",
        ],
    )
    def test_every_spelling_of_one_person_is_the_same_id(self, spelling: str) -> None:
        raw = spelling.format(yymmdd=SE_PERSON[:6], nnnn=SE_PERSON[6:])
        assert parse_national_id("SE", raw) == NationalId("SE", "19" + SE_PERSON)

    def test_plus_means_a_hundred_or_older(self, fixed_today: date) -> None:
        number = se_number("200501", "002")  # 1920-05-01, 105 years old on FIXED_TODAY
        old = parse_national_id("SE", f"{number[:6]}+{number[6:]}")
        assert old.number == "19" + number
        assert parse_national_id("SE", "19" + number) == old
        assert parse_national_id("SE", f"{number[:6]}-{number[6:]}").number == "20" + number

    def test_plus_applies_from_the_year_of_the_hundredth_birthday(self, fixed_today: date) -> None:
        number = se_number("251224", "002")  # turns 100 on 1925-12-24, later in FIXED_TODAY's year
        assert parse_national_id("SE", f"{number[:6]}+{number[6:]}").number == "19" + number

    def test_no_century_resolves_to_most_recent_past_birth(self, fixed_today: date) -> None:
        earlier = se_number("250101", "002")  # 2025-01-01 is in the past on FIXED_TODAY
        later = se_number("251224", "002")  # 2025-12-24 would be in the future
        assert parse_national_id("SE", earlier).number == "20" + earlier
        assert parse_national_id("SE", later).number == "19" + later

    def test_coordination_number_is_accepted(self) -> None:
        number = se_number("880380", "002")  # day 20 + 60
        assert not personnummer.is_valid(number)  # stdnum refuses coordination numbers
        nid = parse_national_id("SE", f"{number[:6]}-{number[6:]}")
        assert nid.number == "19" + number
        assert nid.masked() == "19880380-****"

    def test_coordination_number_spellings_agree(self) -> None:
        number = se_number("880380", "002")
        assert parse_national_id("SE", number) == parse_national_id("SE", f"19{number[:6]}-{number[6:]}")

    def test_coordination_number_with_impossible_day_is_refused(self) -> None:
        assert_refused("SE", se_number("880292", "002"), "invalid birth date")  # Feb 32

    def test_wrong_check_digit_is_refused(self) -> None:
        assert_refused("SE", WRONG_CHECK["SE"], "invalid check digit")

    def test_impossible_date_is_refused(self) -> None:
        assert_refused("SE", se_number("881320", "002"), "invalid birth date")

    def test_future_birth_date_is_refused(self, fixed_today: date) -> None:
        assert_refused("SE", "20" + se_number("251224", "002"), "invalid birth date")

    def test_wrong_length_is_refused(self) -> None:
        assert_refused("SE", SE_PERSON[:-1], "invalid length")

    def test_letters_are_refused(self) -> None:
        assert_refused("SE", SE_PERSON[:6] + "-00A1", "invalid format")


class TestParseNO:
    def test_fodselsnummer_normalises(self) -> None:
        assert parse_national_id("NO", NO_PERSON) == NationalId("NO", NO_PERSON)

    def test_printed_spelling_with_space(self) -> None:
        assert parse_national_id("NO", f"{NO_PERSON[:6]} {NO_PERSON[6:]}").number == NO_PERSON

    def test_d_number_is_accepted(self) -> None:
        number = no_number("550386", 123)  # day 15 + 40
        assert parse_national_id("NO", number).number == number

    def test_wrong_check_digit_is_refused(self) -> None:
        assert_refused("NO", WRONG_CHECK["NO"], "invalid check digit")

    def test_h_number_is_refused(self) -> None:
        number = no_number("154386", 123)  # month 3 + 40: a health-sector help number
        assert fodselsnummer.is_valid(number)  # stdnum accepts it
        assert_refused("NO", number, "unsupported number type")

    def test_test_number_is_refused_by_default(self) -> None:
        assert_refused("NO", NO_PUBLISHED_TEST_NUMBER, "test number not allowed")

    def test_test_number_is_accepted_in_test_mode(self) -> None:
        assert not fodselsnummer.is_valid(NO_PUBLISHED_TEST_NUMBER)  # stdnum: invalid birth date
        nid = parse_national_id("NO", NO_PUBLISHED_TEST_NUMBER, allow_test=True)
        assert nid.number == NO_PUBLISHED_TEST_NUMBER
        assert is_test_number(nid)

    def test_test_number_with_wrong_check_digit_is_refused_in_test_mode(self) -> None:
        assert_refused("NO", wrong_last_digit(NO_PUBLISHED_TEST_NUMBER), "invalid check digit", allow_test=True)

    def test_test_number_with_impossible_date_is_refused(self) -> None:
        assert_refused("NO", no_number("319422", 123), "invalid birth date", allow_test=True)  # 31 April


class TestParseFI:
    def test_hetu_normalises(self) -> None:
        assert parse_national_id("FI", FI_PERSON) == NationalId("FI", FI_PERSON)

    def test_lower_case_is_upper_cased(self) -> None:
        candidates = (fi_number("150386", "-", f"{i:03d}") for i in range(2, 900))
        number = next(n for n in candidates if n[-1].isalpha())
        assert parse_national_id("FI", number.lower()).number == number

    def test_new_century_sign_is_kept(self) -> None:
        number = fi_number("150386", "Y", "123")  # 2023 sign for the 1900s: a different person
        nid = parse_national_id("FI", number)
        assert nid.number == number
        assert nid != parse_national_id("FI", FI_PERSON)

    def test_2000s_century_sign(self) -> None:
        number = fi_number("150305", "A", "123")
        assert parse_national_id("FI", number).masked() == "150305A****"

    def test_temporary_number_is_refused_by_default(self) -> None:
        assert_refused("FI", fi_number("150386", "-", "901"), "test number not allowed")

    def test_temporary_number_is_accepted_in_test_mode(self) -> None:
        number = fi_number("150386", "-", "901")
        nid = parse_national_id("FI", number, allow_test=True)
        assert nid.number == number
        assert is_test_number(nid)

    def test_temporary_number_with_wrong_check_char_reports_the_check_char(self) -> None:
        number = fi_number("150386", "-", "901")
        wrong = number[:-1] + FI_CHECK_CHARS[(FI_CHECK_CHARS.index(number[-1]) + 1) % 31]
        assert_refused("FI", wrong, "invalid check digit")

    def test_wrong_check_char_is_refused(self) -> None:
        assert_refused("FI", WRONG_CHECK["FI"], "invalid check digit")

    def test_individual_number_below_two_is_refused(self) -> None:
        assert_refused("FI", fi_number("150386", "-", "001"), "invalid individual number")

    def test_future_birth_date_is_refused(self) -> None:
        number = fi_number("150399", "A", "123")  # 2099
        assert hetu.is_valid(number)  # stdnum does not look at the clock
        assert_refused("FI", number, "invalid birth date")


class TestParseDK:
    def test_cpr_normalises(self) -> None:
        assert parse_national_id("DK", f"{DK_PERSON[:6]}-{DK_PERSON[6:]}") == NationalId("DK", DK_PERSON)

    def test_no_modulus_11_check(self) -> None:
        number = next(f"150386{s:04d}" for s in range(1000, 2000) if cpr.checksum(f"150386{s:04d}") != 0)
        assert parse_national_id("DK", number).number == number

    def test_impossible_date_is_refused(self) -> None:
        assert_refused("DK", "3102861234", "invalid birth date")

    def test_future_birth_date_is_refused(self) -> None:
        assert_refused("DK", "0101505234", "invalid birth date")  # digit 7 = 5, year 50 -> 2050

    def test_wrong_length_is_refused(self) -> None:
        assert_refused("DK", DK_PERSON[:-1], "invalid length")


class TestParsePL:
    def test_pesel_normalises(self) -> None:
        assert parse_national_id("PL", PL_PERSON) == NationalId("PL", PL_PERSON)

    def test_2000s_month_offset(self) -> None:
        number = pl_number("052315", "1234")  # 2005-03-15: month + 20
        assert parse_national_id("PL", number).masked() == "052315*****"

    def test_wrong_check_digit_is_refused(self) -> None:
        assert_refused("PL", WRONG_CHECK["PL"], "invalid check digit")

    def test_future_birth_date_is_refused(self) -> None:
        number = pl_number("994315", "1234")  # 2199-03-15: month + 40
        assert pesel.is_valid(number)  # stdnum does not look at the clock
        assert_refused("PL", number, "invalid birth date")


class TestInvalidInput:
    @pytest.mark.parametrize("raw", [None, 8803200016, b"8803200016", ["8803200016"]])
    def test_non_string_is_refused(self, raw: object) -> None:
        exc = assert_refused("SE", raw, "not a string")
        assert "8803200016" not in str(exc)

    @pytest.mark.parametrize("country", COUNTRIES)
    def test_blank_is_refused(self, country: str) -> None:
        assert_refused(country, "   ", "invalid length")

    @pytest.mark.parametrize("country", COUNTRIES)
    def test_very_long_input_is_refused(self, country: str) -> None:
        assert_refused(country, "1" * 10_000, "invalid length")

    def test_fullwidth_digits_normalise_to_ascii(self) -> None:
        fullwidth = "".join(chr(0xFF10 + int(c)) for c in PL_PERSON)
        assert parse_national_id("PL", fullwidth).number == PL_PERSON

    @pytest.mark.parametrize("country", COUNTRIES)
    def test_non_ascii_digits_are_refused(self, country: str) -> None:
        arabic_indic = "".join(chr(0x0660 + int(c)) for c in DK_PERSON)
        with pytest.raises(InvalidNationalId):
            parse_national_id(country, arabic_indic)

    @pytest.mark.parametrize("country", sorted(WRONG_CHECK))
    def test_refusal_message_never_contains_the_digits(self, country: str) -> None:
        with pytest.raises(InvalidNationalId) as info:
            parse_national_id(country, WRONG_CHECK[country])
        exc = info.value
        assert exc.reason == "invalid check digit"
        digits = "".join(c for c in WRONG_CHECK[country] if c.isdigit())
        for text in (str(exc), repr(exc), *map(str, exc.args), str(exc.__cause__), str(exc.__context__)):
            assert digits[:6] not in text  # not even the birth-date part
            assert digits not in text
        assert exc.__cause__ is None
        assert exc.__context__ is None or exc.__suppress_context__


class TestMasking:
    @pytest.mark.parametrize(
        ("country", "expected"),
        [
            ("SE", "19880320-****"),
            ("NO", "150386*****"),
            ("FI", "150386-****"),
            ("DK", "150386-****"),
            ("PL", "860315*****"),
        ],
    )
    def test_masked_shows_only_the_birth_date_part(self, country: str, expected: str) -> None:
        nid = parse_national_id(country, VALID[country][0])
        assert nid.masked() == expected
        assert VALID[country][1][len(expected.rstrip("*-")) :] not in nid.masked()

    @pytest.mark.parametrize("country", COUNTRIES)
    def test_repr_and_str_never_contain_the_number(self, country: str) -> None:
        nid = parse_national_id(country, VALID[country][0])
        for text in (repr(nid), str(nid), f"{nid}", f"{nid!r}", repr([nid]), repr({"id": nid})):
            assert nid.number not in text
            assert nid.number[-4:] not in text
            assert nid.masked() in text

    def test_repr_format(self) -> None:
        assert repr(parse_national_id("SE", SE_PERSON)) == "NationalId(SE, 19880320-****)"

    def test_blind_index_input(self) -> None:
        assert parse_national_id("SE", SE_PERSON).blind_index_input() == f"SE:19{SE_PERSON}".encode()

    def test_national_id_is_frozen_and_hashable(self) -> None:
        nid = parse_national_id("SE", SE_PERSON)
        with pytest.raises(AttributeError):
            nid.number = "x"  # type: ignore[misc]
        assert {nid, parse_national_id("SE", "19" + SE_PERSON)} == {nid}

    def test_constructor_refuses_a_non_canonical_number(self) -> None:
        with pytest.raises(InvalidNationalId) as info:
            NationalId("SE", "1234")
        assert "1234" not in str(info.value)

    def test_constructor_refuses_an_unsupported_country(self) -> None:
        with pytest.raises(InvalidNationalId):
            NationalId("DE", "19" + SE_PERSON)


class TestIsTestNumber:
    @pytest.mark.parametrize("country", COUNTRIES)
    def test_ordinary_numbers_are_not_test_numbers(self, country: str) -> None:
        assert not is_test_number(parse_national_id(country, VALID[country][0]))


class TestGenerate:
    @given(seed=st.integers(min_value=0, max_value=2**64), country=st.sampled_from(COUNTRIES))
    @settings(max_examples=300, deadline=None)
    def test_generated_numbers_parse_and_are_stable(self, seed: int, country: str) -> None:
        raw = generate_national_id(country, random.Random(seed))
        first = parse_national_id(country, raw)
        assert parse_national_id(country, raw) == first
        assert parse_national_id(country, first.number) == first
        assert not is_test_number(first)

    @given(seed=st.integers(min_value=0, max_value=2**32), born=st.dates(date(1900, 1, 1), date.today()))
    @settings(max_examples=300, deadline=None)
    def test_every_country_encodes_the_given_birth_date(self, seed: int, born: date) -> None:
        rng = random.Random(seed)
        for country in COUNTRIES:
            nid = parse_national_id(country, generate_national_id(country, rng, birth_date=born))
            assert nid.masked()[:8].startswith(_birth_date_part(country, born))

    @given(seed=st.integers(min_value=0, max_value=2**32))
    @settings(max_examples=200, deadline=None)
    def test_generated_numbers_satisfy_stdnum(self, seed: int) -> None:
        rng = random.Random(seed)
        assert personnummer.is_valid(generate_national_id("SE", rng))
        assert fodselsnummer.is_valid(generate_national_id("NO", rng))
        assert hetu.is_valid(generate_national_id("FI", rng))
        assert cpr.is_valid(generate_national_id("DK", rng))
        assert pesel.is_valid(generate_national_id("PL", rng))

    @pytest.mark.parametrize("country", COUNTRIES)
    def test_default_birth_dates_fall_in_1940_to_2006(self, country: str) -> None:
        rng = random.Random(7)
        years = {_birth_year(parse_national_id(country, generate_national_id(country, rng))) for _ in range(2000)}
        assert min(years) == 1940 and max(years) == 2006

    def test_same_seed_gives_same_numbers(self) -> None:
        first = [generate_national_id(c, random.Random(42)) for c in COUNTRIES]
        assert first == [generate_national_id(c, random.Random(42)) for c in COUNTRIES]

    def test_danish_numbers_before_2007_satisfy_modulus_11(self) -> None:
        rng = random.Random(3)
        for _ in range(500):
            assert cpr.checksum(generate_national_id("DK", rng, birth_date=date(1990, 5, 17)).replace("-", "")) == 0

    def test_printed_spellings(self) -> None:
        rng = random.Random(1)
        born = date(1988, 3, 20)
        assert generate_national_id("SE", rng, birth_date=born).startswith("19880320-")
        assert generate_national_id("NO", rng, birth_date=born).startswith("200388")
        assert generate_national_id("FI", rng, birth_date=born).startswith("200388-")
        assert generate_national_id("DK", rng, birth_date=born).startswith("200388-")
        assert generate_national_id("PL", rng, birth_date=born).startswith("880320")

    def test_datetime_birth_date_is_reduced_to_its_date(self) -> None:
        raw = generate_national_id("SE", random.Random(1), birth_date=datetime(1988, 3, 20, 12, 0))
        assert raw.startswith("19880320-")

    def test_future_birth_date_is_refused(self) -> None:
        with pytest.raises(ValueError, match="future"):
            generate_national_id("SE", random.Random(1), birth_date=date(2999, 1, 1))

    def test_unencodable_birth_date_is_refused(self) -> None:
        with pytest.raises(ValueError):
            generate_national_id("NO", random.Random(1), birth_date=date(1850, 1, 1))

    def test_unsupported_country_is_refused(self) -> None:
        with pytest.raises(InvalidNationalId):
            generate_national_id("DE", random.Random(1))


class TestOneModulePerCountry:
    """DOMAIN.md: Norway's check-digit rule changes in 2032, so each country's rule lives in one module."""

    PACKAGE = pathlib.Path(national_id.__file__).parent
    REGISTER = PACKAGE.parents[1]

    @staticmethod
    def imported_modules(path: pathlib.Path) -> set[str]:
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
        return names

    def test_every_supported_country_has_its_own_module(self) -> None:
        for country in SUPPORTED_COUNTRIES:
            assert (self.PACKAGE / f"{country.lower()}.py").is_file()

    def test_only_the_country_module_uses_that_country_s_stdnum_rules(self) -> None:
        for path in self.REGISTER.rglob("*.py"):
            imported = self.imported_modules(path)
            for country in SUPPORTED_COUNTRIES:
                code = country.lower()
                if any(name == f"stdnum.{code}" or name.startswith(f"stdnum.{code}.") for name in imported):
                    assert path == self.PACKAGE / f"{code}.py", f"{path} uses stdnum.{code}"

    def test_country_modules_do_not_import_each_other(self) -> None:
        countries = {f"register.domain.identity.{c.lower()}" for c in SUPPORTED_COUNTRIES}
        for country in SUPPORTED_COUNTRIES:
            imported = self.imported_modules(self.PACKAGE / f"{country.lower()}.py")
            assert not imported & countries, f"{country} imports another country's rule"


def _birth_date_part(country: str, born: date) -> str:
    if country == "SE":
        return born.strftime("%Y%m%d")
    if country == "PL":
        offset = {18: 80, 19: 0, 20: 20, 21: 40, 22: 60}[born.year // 100]
        return f"{born.year % 100:02d}{born.month + offset:02d}{born.day:02d}"
    return born.strftime("%d%m%y")


def _birth_year(nid: NationalId) -> int:
    n = nid.number
    if nid.country == "SE":
        return int(n[:4])
    if nid.country == "PL":
        return pesel.get_birth_date(n).year
    if nid.country == "NO":
        return fodselsnummer.get_birth_date(n).year
    if nid.country == "DK":
        return cpr.get_birth_date(n).year
    return {"+": 1800, "-": 1900, "A": 2000}[n[6]] + int(n[4:6])
