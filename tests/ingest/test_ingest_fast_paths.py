"""The shortcuts used for large files give exactly what the reference functions give.

plain_amount vs parse_amount, RowNormalizer vs normalize_row, fingerprint_values vs the JSON form.
"""

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.ingest.formats.base import SourceRow
from portal.ingest.formats.detect import open_source
from portal.ingest.mapping import MappingProfile
from portal.ingest.normalize import (
    Fingerprints,
    NormalizedRow,
    RowNormalizer,
    content_fingerprint,
    fingerprint_values,
    normalize_row,
)
from portal.ingest.values import ValueProblem, parse_amount, plain_amount
from tests.samples import PROFILE

DATA = Path(__file__).resolve().parents[1] / "data"
COLUMNS = PROFILE["columns"]


def reference_amount(text, separator, exponent):
    try:
        return parse_amount(text, decimal_separator=separator, currency_exponent=exponent)
    except ValueProblem:
        return "problem"


AMOUNT_EDGES = [
    "1234.50", "1,234.50", "(45.00)", "-45", "(-45)", "0.00", "(0)", "-0", "007.5", "000,123.4",
    "1,23", "1,2345", "12.500", "12.5000", "1.000", "1.000,50", "1.234.567", "45.", ".50", "1,234,567",
    "١٢٣", "1 234.50", "$12", "12-", "(12", "1e5", "", "()", "10000000000000.00", "99999999999999999",
]  # fmt: skip


@pytest.mark.parametrize("text", AMOUNT_EDGES)
@pytest.mark.parametrize("separator", [".", ","])
@pytest.mark.parametrize("exponent", [0, 2, 3])
def test_plain_amount_when_it_answers_agrees_with_parse_amount(text, separator, exponent):
    fast = plain_amount(text, decimal_separator=separator, currency_exponent=exponent)
    if fast is not None:
        assert reference_amount(text, separator, exponent) == (fast, None)


@given(
    text=st.text(alphabet="0123456789.,-() ", max_size=14),
    separator=st.sampled_from([".", ","]),
    exponent=st.sampled_from([0, 2, 3, 4]),
)
def test_plain_amount_on_any_digits_and_marks_agrees_with_parse_amount(text, separator, exponent):
    fast = plain_amount(text, decimal_separator=separator, currency_exponent=exponent)
    if fast is not None:
        assert reference_amount(text, separator, exponent) == (fast, None)


@given(minor=st.integers(min_value=-(10**12), max_value=10**12), exponent=st.sampled_from([0, 2, 3]))
def test_plain_amount_reads_grouped_and_refund_amounts(minor, exponent):
    digits = str(abs(minor)).rjust(exponent + 1, "0")
    whole, fraction = (digits[:-exponent], digits[-exponent:]) if exponent else (digits, "")
    text = f"{int(whole):,}" + ("." + fraction if fraction else "")
    if minor < 0:
        text = f"({text})"
    assert plain_amount(text, decimal_separator=".", currency_exponent=exponent) == minor


def profile(**overrides):
    data = {**PROFILE, "expense_type_synonyms": {"Course Fee": "fees"}}
    data.update(overrides)
    return MappingProfile.from_json_dict(data)


GOOD = {
    "Employee ID": "E100",
    "Employee Name": "Ana",
    "Employer": "ACME",
    "Transaction ID": "T-1",
    "Fee Type": "Tuition",
    "Amount": "1,234.50",
    "Currency": "USD",
    "Date of Service": "2026-01-15",
    "Course": "Econ 101",
    "Term": "Spring 2026",
}
VARIANTS = {
    "Employee ID": ["", "  ", " E7 ", "E" * 65],
    "Employee Name": ["", "N" * 201],
    "Employer": ["", " globex "],
    "Transaction ID": ["", "R" * 101],
    "Fee Type": ["", "Parking", "Books & Materials", "course fee", "TUITION"],
    "Amount": ["", "abc", "(45.00)", "$12.00", "EUR 10.00", "1200.50", "1,23", "12.345", "-0.00"],
    "Currency": ["", "usd", "JPY", "XYZ", "EUR"],
    "Date of Service": ["", "2026-02-30", "15.01.2026", "01/02/2026", "5 Oct 2026", "46000", "1999-01-01"],
    "Course": ["", "=SUM(A1)", "  Econ   101 ", "C" * 501],
    "Term": ["", "T" * 51],
}


def cases():
    yield GOOD
    for column, values in VARIANTS.items():
        for value in values:
            yield {**GOOD, column: value}
    missing = dict(GOOD)
    del missing["Currency"]
    yield missing


@pytest.mark.parametrize("cells", list(cases()))
@pytest.mark.parametrize(
    "options",
    [{}, {"default_currency": None}, {"default_customer": "GLOBEX"}, {"decimal_separator": ","}],
)
def test_row_normalizer_gives_what_normalize_row_gives(cells, options):
    p = profile(**options)
    row = SourceRow(7, cells)
    normalizer = RowNormalizer(p)
    expected = normalize_row(row, p)
    assert normalizer(row) == expected
    assert normalizer(row) == expected  # second time from the caches
    values = normalizer.values(row)
    if values is not None:
        assert NormalizedRow(7, *values) == expected


@pytest.mark.parametrize("name", ["comma.csv", "bad_values.csv", "semicolon.csv", "items.json", "lines.xlsx"])
def test_row_normalizer_on_sample_files_matches_normalize_row(name):
    p = profile(expense_type_synonyms={}, date_formats=[])
    with (DATA / name).open("rb") as stream, open_source(stream) as parsed:
        rows = list(parsed.rows)
    columns = {field: header for field, header in COLUMNS.items() if header in (parsed.headers or [])}
    if set(columns) != set(COLUMNS):
        pytest.skip(f"{name} has other headers")
    normalizer = RowNormalizer(p)
    assert [normalizer(r) for r in rows] == [normalize_row(r, p) for r in rows]


def json_fingerprint(row):
    def squash(value):
        return " ".join((value or "").split())

    canonical = [
        "v1",
        squash(row.customer_code),
        squash(row.employee_external_id),
        row.expense_type,
        row.amount_minor,
        row.currency,
        row.service_date.isoformat(),
        squash(row.description),
        squash(row.term),
    ]
    payload = json.dumps(canonical, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@given(
    code=st.text(max_size=12),
    employee=st.text(max_size=12),
    amount=st.integers(min_value=-(10**15), max_value=10**15),
    date=st.dates(),
    description=st.text(max_size=20),
    term=st.one_of(st.none(), st.text(max_size=10)),
)
def test_fingerprint_is_byte_for_byte_the_json_form(code, employee, amount, date, description, term):
    row = NormalizedRow(1, employee, "", code, "R", "tuition", amount, "USD", date, description, term)
    assert content_fingerprint(row) == json_fingerprint(row)
    assert fingerprint_values(
        code, employee, "tuition", amount, "USD", date, description, term
    ) == json_fingerprint(row)


@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["ACME", " ACME ", "Glo\tbex", "ünï", 'a"b\\c']),
            st.sampled_from(["E1", "E2 ", "email:a@b.example", "", "x\ny"]),
            st.sampled_from(["tuition", "fees"]),
            st.integers(min_value=-(10**15), max_value=10**15),
            st.sampled_from(["USD", "EUR", "JPY"]),
            st.dates(),
            st.one_of(st.none(), st.text(max_size=12)),
            st.one_of(st.none(), st.text(max_size=8)),
        ),
        max_size=30,
    )
)
def test_fingerprints_of_a_file_are_fingerprint_values_row_for_row(rows):
    """The cached pieces never change a fingerprint, however the rows repeat or differ."""
    fingerprints = Fingerprints()
    assert [fingerprints(*r) for r in rows] == [fingerprint_values(*r) for r in rows]


def test_fingerprints_past_the_cache_limit_stay_right(monkeypatch):
    monkeypatch.setattr(Fingerprints, "CACHE_LIMIT", 2)
    fingerprints = Fingerprints()
    rows = [
        (f"C{i % 5}", f"E{i}", "tuition", i, "USD", dt.date.fromordinal(738000 + i), f"d{i % 3}", None)
        for i in range(12)
    ]
    assert [fingerprints(*r) for r in rows] == [fingerprint_values(*r) for r in rows]
    assert max(len(fingerprints._who), len(fingerprints._when), len(fingerprints._what)) == 2


def test_fingerprint_keeps_known_value():
    import datetime as dt

    row = NormalizedRow(
        2, "E100", "Ana", "ACME", "T-1", "tuition", 123450, "USD", dt.date(2026, 1, 15), 'Econ "1"\t', None
    )
    assert content_fingerprint(row) == json_fingerprint(row)
