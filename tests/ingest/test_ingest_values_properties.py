"""Property-based round trips for parse_amount and parse_date.
Values formatted the ways people write them must parse back to exactly the same value."""

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from portal.ingest.dates import parse_date
from portal.ingest.values import parse_amount

minor_units = st.integers(min_value=-(10**12), max_value=10**12)
exponents = st.sampled_from([0, 2, 3])


def _split(minor: int, exponent: int) -> tuple[str, str]:
    digits = str(abs(minor)).rjust(exponent + 1, "0")
    return (digits[:-exponent], digits[-exponent:]) if exponent else (digits, "")


def _grouped(whole: str, sep: str) -> str:
    return f"{int(whole):,}".replace(",", sep)


def _fmt(minor: int, exponent: int, style: str) -> tuple[str, str, str | None]:
    """(text, decimal separator, currency expected back)."""
    whole, frac = _split(minor, exponent)
    neg = minor < 0
    if style == "plain":
        number = whole + ("." + frac if frac else "")
        return ("-" if neg else "") + number, ".", None
    if style == "thousands":
        number = _grouped(whole, ",") + ("." + frac if frac else "")
        return ("-" if neg else "") + number, ".", None
    if style == "dollar":
        number = "$" + _grouped(whole, ",") + ("." + frac if frac else "")
        return ("-" if neg else "") + number, ".", "USD"
    if style == "parens":
        number = _grouped(whole, ",") + ("." + frac if frac else "")
        return (f"({number})" if neg else number), ".", None
    if style == "european":
        number = _grouped(whole, ".") + ("," + frac if frac else "") + " EUR"
        return ("-" if neg else "") + number, ",", "EUR"
    if style == "trailing_minus":
        number = "USD " + whole + ("." + frac if frac else "")
        return number + ("-" if neg else ""), ".", "USD"
    raise AssertionError(style)


@given(
    minor=minor_units,
    exponent=exponents,
    style=st.sampled_from(["plain", "thousands", "dollar", "parens", "european", "trailing_minus"]),
)
def test_parse_amount_when_formatted_in_human_style_round_trips(minor, exponent, style):
    text, separator, currency = _fmt(minor, exponent, style)
    assert parse_amount(text, decimal_separator=separator, currency_exponent=exponent) == (minor, currency)


dates = st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2100, 12, 31))


@given(day=dates)
def test_parse_date_when_iso_round_trips(day):
    assert parse_date(day.isoformat()) == day


@given(day=dates, fmt=st.sampled_from(["%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%Y%m%d", "%d-%m-%Y"]))
def test_parse_date_when_profile_format_round_trips(day, fmt):
    assert parse_date(day.strftime(fmt), formats=[fmt]) == day


@given(day=dates, fmt=st.sampled_from(["%d %b %Y", "%b %d, %Y", "%d-%b-%Y", "%d %B %Y", "%B %d, %Y"]))
def test_parse_date_when_month_name_style_round_trips(day, fmt):
    assert parse_date(day.strftime(fmt)) == day


@given(day=st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2100, 12, 31)))
def test_parse_date_when_excel_serial_round_trips(day):
    serial = (day - dt.date(1899, 12, 30)).days
    assert parse_date(str(serial)) == day
