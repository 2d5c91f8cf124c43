"""Tests for values.parse_amount: accepted human styles and every refusal.
Amounts are money: ambiguous or lossy input must raise, never round or guess."""

import pytest

from portal.ingest.values import ValueProblem, amount_currency, parse_amount


@pytest.mark.parametrize(
    ("text", "kwargs", "expected"),
    [
        ("1234.5", {}, (123450, None)),
        ("$1,234.56", {}, (123456, "USD")),
        ("USD 1,200.00", {}, (120000, "USD")),
        ("1 200,00 EUR", {"decimal_separator": ","}, (120000, "EUR")),
        ("€1.234,56", {"decimal_separator": ","}, (123456, "EUR")),
        ("1.234,56", {"decimal_separator": ","}, (123456, None)),
        ("(150.00)", {}, (-15000, None)),
        ("-75.00", {}, (-7500, None)),
        ("75.00-", {}, (-7500, None)),
        ("+12", {}, (1200, None)),
        ("£3", {}, (300, "GBP")),
        ("12 usd", {}, (1200, "USD")),
        ("($150.00)", {}, (-15000, "USD")),
        ("-$75", {}, (-7500, "USD")),
        ("1,234", {}, (123400, None)),
        ("1\u00a0234.50", {}, (123450, None)),
        ("1'234.50", {}, (123450, None)),
        ("1200", {"currency_exponent": 0}, (1200, None)),
        ("1.234", {"currency_exponent": 3}, (1234, None)),
        ("12.50", {"currency_exponent": 4}, (125000, None)),
        ("-0.00", {}, (0, None)),
    ],
)
def test_parse_amount_when_human_style_returns_minor_units_and_currency(text, kwargs, expected):
    assert parse_amount(text, **kwargs) == expected


def test_parse_amount_when_trailing_zero_beyond_exponent_keeps_exact_value():
    assert parse_amount("12.5000") == (1250, None)


@pytest.mark.parametrize(
    ("text", "kwargs", "fragment"),
    [
        ("", {}, "empty"),
        ("   ", {}, "empty"),
        ("abc", {}, "not a currency code"),
        ("twelve", {}, "letters"),
        ("12.345", {}, "3 decimal places"),
        ("1.234", {}, "3 decimal places"),
        ("1.000", {}, "3 decimal places"),
        ("12.5", {"currency_exponent": 0}, "no decimals"),
        ("1,23", {}, "ambiguous: ',' is not this profile's decimal separator"),
        ("1.23", {"decimal_separator": ","}, "ambiguous: '.' is not this profile's decimal separator"),
        ("1,23,4", {}, "misplaced thousands separator"),
        ("12,34,567.00", {}, "misplaced thousands separator"),
        ("-(150.00)", {}, "both parentheses and a minus"),
        ("--5", {}, "conflicting or repeated signs"),
        ("+-5", {}, "conflicting or repeated signs"),
        ("$12 EUR", {}, "different currencies"),
        ("(12", {}, "unbalanced parentheses"),
        ("1.2.3", {}, "more than one '.'"),
        ("1,234.5,6", {}, "misplaced separator"),
        ("1 234,5.00", {}, "mixes different thousands separators"),
        ("12#", {}, "unexpected character '#'"),
        ("$", {}, "no digits"),
        ("1e5", {}, "letters"),
        ("9" * 20, {}, "too large"),
    ],
)
def test_parse_amount_when_bad_or_ambiguous_raises_specific_problem(text, kwargs, fragment):
    with pytest.raises(ValueProblem) as excinfo:
        parse_amount(text, **kwargs)
    assert fragment in excinfo.value.message
    assert excinfo.value.field_hint == "amount"


def test_parse_amount_when_result_is_int_never_float():
    minor, _ = parse_amount("0.10")
    assert type(minor) is int and minor == 10


def test_parse_amount_when_bad_decimal_separator_argument_raises_value_error():
    with pytest.raises(ValueError):
        parse_amount("1", decimal_separator=" ")


def test_amount_currency_when_code_after_number_returns_code():
    assert amount_currency("1 200,00 EUR") == "EUR"


def test_amount_currency_when_no_marker_returns_none():
    assert amount_currency("1,200.00") is None


@pytest.mark.parametrize("text", ["12. 50", "12 .50", "12.5 0"])
def test_parse_amount_when_space_next_to_decimal_separator_raises(text):
    with pytest.raises(ValueProblem, match="space"):
        parse_amount(text)
