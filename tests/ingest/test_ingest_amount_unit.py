"""Amounts in minor units (profile `amount_unit: "minor"`): each currency's exponent is honoured,
a minor amount must be a whole number, and the fast path gives what the reference gives."""

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.core.catalog import CURRENCY_EXPONENTS
from portal.core.money import format_money
from portal.ingest.formats.base import SourceRow
from portal.ingest.formats.detect import open_source
from portal.ingest.headers import propose_amount_unit, propose_mapping
from portal.ingest.mapping import MappingError, MappingProfile
from portal.ingest.normalize import NormalizedRow, RowNormalizer, normalize_row
from portal.ingest.values import MAX_MINOR_UNITS, ValueProblem, parse_minor_amount, plain_minor_amount
from tests.samples import PROFILE

DATA = Path(__file__).resolve().parents[1] / "data"
GOOD = {
    "Employee ID": "E100",
    "Employee Name": "Ana",
    "Employer": "ACME",
    "Transaction ID": "T-1",
    "Fee Type": "Tuition",
    "Amount": "125050",
    "Currency": "USD",
    "Date of Service": "2026-10-05",
    "Course": "Econ 101",
    "Term": "",
}


def minor_profile(**overrides):
    return MappingProfile.from_json_dict({**PROFILE, "amount_unit": "minor", **overrides})


def read(cells, profile=None):
    return normalize_row(SourceRow(2, {**GOOD, **cells}), profile or minor_profile())


def test_profile_when_saved_without_amount_unit_reads_major_units():
    stored_before_the_key = {k: v for k, v in PROFILE.items() if k != "amount_unit"}
    profile = MappingProfile.from_json_dict(stored_before_the_key)
    assert profile.amount_unit == "major"
    assert read({"Amount": "1250.50"}, profile).amount_minor == 125050
    assert profile.to_json_dict() == PROFILE  # saved again, it says so


def test_profile_when_amount_unit_unknown_lists_the_choices():
    with pytest.raises(MappingError) as excinfo:
        MappingProfile.from_json_dict({**PROFILE, "amount_unit": "cents"})
    assert excinfo.value.problems == [
        "amount unit must be 'major' (1250.50) or 'minor' (125050 cents), not 'cents'"
    ]


def test_profile_when_amount_unit_minor_round_trips_through_json():
    profile = minor_profile()
    assert profile.to_json_dict()["amount_unit"] == "minor"
    assert MappingProfile.from_json_dict(json.loads(json.dumps(profile.to_json_dict()))) == profile


@pytest.mark.parametrize(
    ("amount", "currency", "minor", "shown"),
    [
        ("125050", "USD", 125050, "$1,250.50"),
        ("125050", "JPY", 125050, "¥125,050"),
        ("1250505", "BHD", 1250505, "BHD1,250.505"),
        ("-4500", "USD", -4500, "-$45.00"),
        ("(4500)", "USD", -4500, "-$45.00"),
        ("USD 125050", "USD", 125050, "$1,250.50"),
    ],
)
def test_minor_amount_when_whole_gives_that_many_minor_units_of_its_currency(amount, currency, minor, shown):
    row = read({"Amount": amount, "Currency": currency})
    assert (row.amount_minor, row.currency) == (minor, currency)
    assert format_money(row.amount_minor, row.currency) == shown


@pytest.mark.parametrize("amount", ["1250.5", "12,50", "125,050", "1250.00", "125 050"])
def test_minor_amount_when_not_whole_is_refused_naming_the_unit(amount):
    (problem,) = read({"Amount": amount})
    assert problem.field == "amount" and problem.value == amount
    assert f"amount '{amount}' is not a whole number of minor units" in problem.message
    assert "hundredths, such as cents" in problem.message and "1250.50 is written 125050" in problem.message


def test_minor_amount_when_currency_has_no_minor_unit_says_so():
    (problem,) = read({"Amount": "1250.5", "Currency": "JPY"})
    assert "this currency has no smaller unit" in problem.message


def test_minor_amount_when_bhd_names_thousandths():
    (problem,) = read({"Amount": "12.5", "Currency": "BHD"})
    assert "thousandths" in problem.message and "125.050 is written 125050" in problem.message


def test_minor_amount_when_over_the_limit_is_refused():
    (problem,) = read({"Amount": str(MAX_MINOR_UNITS + 1)})
    assert problem.message.endswith("is too large")


def test_minor_amount_when_other_fields_wrong_reports_them_too():
    problems = read({"Amount": "12.5", "Fee Type": "Parking"})
    assert {p.field for p in problems} == {"amount", "expense_type"}


@given(
    minor=st.integers(min_value=-MAX_MINOR_UNITS, max_value=MAX_MINOR_UNITS),
    currency=st.sampled_from(sorted(CURRENCY_EXPONENTS)),
)
def test_minor_amount_for_any_integer_and_currency_round_trips_exactly(minor, currency):
    profile = minor_profile()
    row = SourceRow(2, {**GOOD, "Amount": str(minor), "Currency": currency})
    expected = NormalizedRow(
        2, "E100", "Ana", "ACME", "T-1", "tuition", minor, currency, read({}).service_date, "Econ 101", None
    )
    assert normalize_row(row, profile) == expected
    assert RowNormalizer(profile)(row) == expected


@given(text=st.text(alphabet="0123456789.,-() $USD", max_size=12), exponent=st.sampled_from([0, 2, 3, 4]))
def test_plain_minor_amount_when_it_answers_agrees_with_parse_minor_amount(text, exponent):
    fast = plain_minor_amount(text)
    if fast is not None:
        assert parse_minor_amount(text, currency_exponent=exponent) == (fast, None)


@pytest.mark.parametrize(
    "amount", ["125050", "-0", "007", "(45)", "1250.5", "12,50", "", "abc", "$125050", "EUR 10", "--5"]
)
@pytest.mark.parametrize("currency", ["USD", "JPY", "BHD", "", "XYZ"])
def test_row_normalizer_in_minor_units_gives_what_normalize_row_gives(amount, currency):
    profile = minor_profile()
    row = SourceRow(7, {**GOOD, "Amount": amount, "Currency": currency})
    normalizer = RowNormalizer(profile)
    assert normalizer(row) == normalize_row(row, profile)
    values = normalizer.values(row)
    if values is not None:
        assert NormalizedRow(7, *values) == normalize_row(row, profile)


def test_plain_minor_amount_when_separator_leaves_it_to_the_reference():
    assert plain_minor_amount("1250.5") is None
    with pytest.raises(ValueProblem):
        parse_minor_amount("1250.5")


@pytest.mark.parametrize("name", ["items_cents.json", "items_cents.jsonl"])
def test_json_feed_in_cents_with_timestamps_reads_each_currency_and_local_date(name):
    with open(DATA / name, "rb") as fh, open_source(fh) as parsed:
        columns = propose_mapping(parsed.headers)
        profile = MappingProfile(columns=columns, amount_unit=propose_amount_unit(columns["amount"]))
        rows = [normalize_row(r, profile) for r in parsed.rows]
    assert columns["amount"] == "amount_cents" and profile.amount_unit == "minor"
    assert [(r.amount_minor, r.currency, r.service_date.isoformat()) for r in rows] == [
        (125050, "USD", "2026-10-05"),
        (125050, "JPY", "2026-10-05"),
        (-1250505, "BHD", "2026-10-05"),
    ]


@pytest.mark.parametrize(
    ("header", "unit"),
    [
        ("amount_cents", "minor"),
        ("AmountCents", "minor"),
        ("Amount (minor units)", "minor"),
        ("Amount", "major"),
    ],
)
def test_propose_amount_unit_when_header_says_cents_proposes_minor(header, unit):
    assert propose_amount_unit(header) == unit


def test_cli_mappings_export_import_round_trips_amount_unit(app, partner, runner, tmp_path):
    source = tmp_path / "cents.json"
    source.write_text(json.dumps({**PROFILE, "amount_unit": "minor"}))
    imported = runner.invoke(
        args=["mappings", "import", "--partner", "state-u", "--name", "feed", str(source)]
    )
    assert imported.exit_code == 0, imported.output
    out = tmp_path / "exported.json"
    exported = runner.invoke(args=["mappings", "export", "--partner", "state-u", "--name", "feed", str(out)])
    assert exported.exit_code == 0, exported.output
    assert json.loads(out.read_text()) == {**PROFILE, "amount_unit": "minor"}
