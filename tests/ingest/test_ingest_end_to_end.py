"""End-to-end: every sample partner file, read with a proposed mapping, gives the same line items.
Also checks that bad values in a file come back as row-and-field problems rather than dropped rows."""

import datetime as dt
from pathlib import Path

import pytest

from portal.ingest.formats.detect import open_source
from portal.ingest.headers import propose_mapping
from portal.ingest.mapping import MappingProfile, row_key_columns
from portal.ingest.normalize import NormalizedRow, RowProblem, normalize_row

DATA = Path(__file__).resolve().parents[1] / "data"


def normalize_file(name, **profile_options):
    with open(DATA / name, "rb") as fh, open_source(fh, sheet=profile_options.get("sheet")) as parsed:
        profile = MappingProfile(columns=propose_mapping(parsed.headers), **profile_options)
        assert profile.problems() == []
        parsed.skip_trailing_rows(row_key_columns(profile))
        return [normalize_row(row, profile) for row in parsed.rows]


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("comma.csv", {}),
        ("semicolon.csv", {"decimal_separator": ","}),
        ("tab.tsv", {}),
        ("pipe.txt", {}),
        ("quoted.csv", {}),
        ("utf8_bom.csv", {}),
        ("utf16le_bom.csv", {}),
        ("crlf.csv", {}),
        ("items.json", {}),
        ("items.jsonl", {}),
        ("items.docx", {}),
    ],
)
def test_sample_file_when_normalized_gives_expected_amounts_and_dates(name, options):
    rows = normalize_file(name, **options)
    assert all(isinstance(r, NormalizedRow) for r in rows), rows
    assert [(r.amount_minor, r.currency, r.service_date, r.expense_type) for r in rows] == [
        (123450, "USD", dt.date(2026, 1, 15), "tuition"),
        (8999, "USD", dt.date(2026, 1, 20), "materials"),
        (-4500, "USD", dt.date(2026, 2, 1), "tutoring"),
    ]


def test_sample_xlsx_when_normalized_reads_serial_and_real_dates():
    rows = normalize_file("lines.xlsx")
    assert [(r.row_number, r.amount_minor, r.service_date) for r in rows] == [
        (5, 123450, dt.date(2026, 1, 15)),
        (7, 8999, dt.date(2026, 1, 20)),
        (8, -4500, dt.date(2026, 2, 1)),
    ]


def test_sample_cp1252_when_normalized_takes_euro_from_amount():
    (row,) = normalize_file("cp1252.csv", decimal_separator=",", date_formats=["%d.%m.%Y"])
    assert (row.amount_minor, row.currency, row.service_date) == (150000, "EUR", dt.date(2026, 10, 5))
    assert row.description == "Crème brûlée 101"


def test_sample_bad_values_when_normalized_reports_each_problem_by_row_and_field():
    results = normalize_file("bad_values.csv")
    assert all(isinstance(r, list) for r in results)
    found = {(p.row_number, p.field) for problems in results for p in problems}
    assert found == {
        (2, "amount"),
        (3, "currency"),
        (4, "service_date"),
        (5, "employee_external_id"),
        (5, "expense_type"),
        (5, "amount"),
        (5, "service_date"),
    }
    assert all(isinstance(p, RowProblem) and p.message for problems in results for p in problems)
