"""Tests for dates.parse_date, values. parse_currency and parse_expense_type.
Ambiguous dates and unknown codes must be refused with a reason a person can act on."""

import datetime as dt

import pytest

from portal.core.catalog import CURRENCY_EXPONENTS
from portal.ingest.dates import parse_date
from portal.ingest.values import (
    ValueProblem,
    parse_currency,
    parse_expense_type,
)

D = dt.date(2026, 10, 5)


@pytest.mark.parametrize(
    "text",
    [
        "2026-10-05",
        "2026-10-05T13:45:00",
        "2026-10-05 08:00",
        "2026-10-05T00:00:00Z",
        "5 Oct 2026",
        "Oct 5, 2026",
        "05-Oct-2026",
        "5 October 2026",
        "October 5 2026",
        "05-Oct-26",
        "46300",
        "46300.0",
        "  2026-10-05  ",
    ],
)
def test_parse_date_when_unambiguous_style_returns_date(text):
    assert parse_date(text) == D


def test_parse_date_when_profile_format_matches_returns_date():
    assert parse_date("05/10/2026", formats=["%d/%m/%Y"]) == D


def test_parse_date_when_formats_disagree_raises_ambiguous_with_both_dates():
    with pytest.raises(ValueProblem) as excinfo:
        parse_date("03/04/2026", formats=["%m/%d/%Y", "%d/%m/%Y"])
    message = excinfo.value.message
    assert "ambiguous date '03/04/2026'" in message
    assert "2026-03-04" in message and "2026-04-03" in message
    assert "set the profile's date format" in message


def test_parse_date_when_formats_agree_returns_date():
    assert parse_date("13/04/2026", formats=["%m/%d/%Y", "%d/%m/%Y"]) == dt.date(2026, 4, 13)


def test_parse_date_when_slash_date_without_format_asks_for_format():
    with pytest.raises(ValueProblem, match="set the profile's date format"):
        parse_date("25/12/2026")


def test_parse_date_when_slash_date_does_not_match_profile_names_formats():
    with pytest.raises(ValueProblem, match="does not match the profile's date formats"):
        parse_date("2026/25/12", formats=["%d/%m/%Y"])


@pytest.mark.parametrize("text", ["2026-02-30", "31 Apr 2026"])
def test_parse_date_when_impossible_calendar_date_raises_invalid(text):
    with pytest.raises(ValueProblem, match="is not a valid date"):
        parse_date(text)


@pytest.mark.parametrize("text", ["1999-12-31", "2101-01-01"])
def test_parse_date_when_outside_year_range_raises(text):
    with pytest.raises(ValueProblem, match="outside the accepted years"):
        parse_date(text)


def test_parse_date_when_custom_year_range_accepts_old_date():
    assert parse_date("1999-12-31", min_year=1990) == dt.date(1999, 12, 31)


@pytest.mark.parametrize("text", ["12345", "46300.5", "99999"])
def test_parse_date_when_number_not_a_sane_serial_raises(text):
    with pytest.raises(ValueProblem):
        parse_date(text)


def test_parse_date_when_serials_disabled_refuses_number():
    with pytest.raises(ValueProblem):
        parse_date("46300", excel_serial=False)


@pytest.mark.parametrize("text", ["", "soon", "Foo 5, 2026"])
def test_parse_date_when_unreadable_raises(text):
    with pytest.raises(ValueProblem) as excinfo:
        parse_date(text)
    assert excinfo.value.field_hint == "date"


def test_parse_currency_when_lowercase_returns_uppercase_code():
    assert parse_currency(" usd ") == "USD"


@pytest.mark.parametrize("text", ["", "XYZ", "US", "dollars", "XAU"])
def test_parse_currency_when_not_active_iso_code_raises(text):
    with pytest.raises(ValueProblem):
        parse_currency(text)


@pytest.mark.parametrize(("code", "exponent"), [("USD", 2), ("JPY", 0), ("BHD", 3), ("CLF", 4), ("EUR", 2)])
def test_currency_exponents_when_known_code_gives_iso_minor_units(code, exponent):
    assert CURRENCY_EXPONENTS[code] == exponent


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Books & Materials", "materials"),
        ("books and materials", "materials"),
        ("TEXTBOOKS", "materials"),
        ("Course Materials", "materials"),
        ("Tuition Fee", "tuition"),
        ("course-tuition", "tuition"),
        ("Tutoring Session", "tutoring"),
        ("Tutor", "tutoring"),
        ("Lab Fee", "fees"),
        ("Fee", "fees"),
        ("Misc.", "other"),
        (" tuition ", "tuition"),
    ],
)
def test_parse_expense_type_when_builtin_synonym_returns_canonical(text, expected):
    assert parse_expense_type(text, {}) == expected


def test_parse_expense_type_when_profile_synonym_overrides_builtin():
    assert parse_expense_type("Lab Fee", {"lab fee": "materials"}) == "materials"


def test_parse_expense_type_when_unknown_lists_accepted_values():
    with pytest.raises(ValueProblem) as excinfo:
        parse_expense_type("Parking", {})
    assert "tuition, materials, tutoring, fees, other" in excinfo.value.message


def test_parse_expense_type_when_empty_raises():
    with pytest.raises(ValueProblem, match="empty"):
        parse_expense_type("  ", {})
