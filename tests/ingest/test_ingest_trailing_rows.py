"""Rows after the data (totals, "End of report", signatures, rows of lines): skipped and listed, not
rejected, so a clean file still imports at once; the same rows between line items stay problems."""

import io
from pathlib import Path

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.ingest.formats.base import MAX_HELD_ROWS, SourceRow, trailer_reason
from portal.ingest.formats.detect import open_source
from portal.ingest.mapping import MappingProfile, row_key_columns
from portal.ingest.profiles import save_mapping
from portal.ingest.reports import problem_rows
from portal.models import LineItem, Partner, Upload
from tests.ingest.test_pipeline import upload_bytes
from tests.samples import PROFILE, ROW1, ROW2, ROW3, csv_bytes

DATA = Path(__file__).resolve().parents[1] / "data"
KEYS = row_key_columns(MappingProfile.from_json_dict(PROFILE))


def read(data: bytes, keys=KEYS):
    with open_source(io.BytesIO(data)) as parsed:
        parsed.skip_trailing_rows(keys)
        return [r.number for r in parsed.rows], parsed.skipped


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        (["Total", "", "1279.49"], "a totals row"),
        (["", "Grand total:"], "a totals row"),
        (["SUBTOTAL"], "a totals row"),
        (["End of report"], "an end-of-report line"),
        (["*** End of file ***"], "an end-of-report line"),
        (["Signed: ________"], "a signature line"),
        (["Signature", "Date"], "a signature line"),
        (["Approved by J. Doe"], "a signature line"),
        (["Prepared by: Registrar"], "a signature line"),
        (["Page 3 of 3"], "a page footer"),
        (["-----", "", "____"], "an empty row (only lines or punctuation)"),
        (["E100", "Total Immersion"], None),
        (["Totality"], None),
        (["Endowment"], None),
        (["", "", ""], None),
    ],
)
def test_trailer_reason_when_first_filled_cell_says_what_the_row_is(values, reason):
    assert trailer_reason(values) == reason


@pytest.mark.parametrize(
    ("trailer", "reason"),
    [
        ("Total,,,,,1279.49,,,,", "a totals row"),
        ("End of report", "an end-of-report line"),
        ("Signed: J. Doe (Registrar)", "a signature line"),
        (",,,,,1279.49,USD,,,", "no employee and no reference"),
        ("-----,,,,,,,,,", "an empty row (only lines or punctuation)"),
    ],
)
def test_csv_when_row_after_data_is_not_a_line_item_skips_and_lists_it(trailer, reason):
    numbers, skipped = read(csv_bytes(ROW1, ROW2, trailer))
    assert numbers == [2, 3]
    assert [(s["row"], s["reason"]) for s in skipped] == [(4, reason)]


def test_csv_when_several_rows_after_data_lists_each_with_its_text():
    numbers, skipped = read(csv_bytes(ROW1, "Total,,,,,1234.50,,,,", "", "End of report", "Signed: ______"))
    assert numbers == [2]
    assert skipped == [
        {"row": 3, "reason": "a totals row", "text": "Total | 1234.50"},
        {"row": 5, "reason": "an end-of-report line", "text": "End of report"},
        {"row": 6, "reason": "a signature line", "text": "Signed: ______"},
    ]


def test_csv_when_totals_row_between_line_items_is_read_as_a_row():
    numbers, skipped = read(csv_bytes(ROW1, "Total,,,,,1234.50,,,,", ROW2))
    assert numbers == [2, 3, 4]
    assert skipped == []


def test_row_with_employee_and_reference_is_data_whatever_its_first_cell_says():
    data = b"Note,Employee ID,Transaction ID\nok,E1,T-1\nSigned up late,E2,T-2\nSigned: J. Doe,,\n"
    numbers, skipped = read(data, keys=["Employee ID", "Transaction ID"])
    assert numbers == [2, 3]
    assert [(s["row"], s["reason"]) for s in skipped] == [(4, "a signature line")]


def test_without_key_columns_only_the_wording_decides():
    numbers, skipped = read(csv_bytes(ROW1, ",,,,,1279.49,USD,,,", "End of report"), keys=())
    assert numbers == [2, 3]
    assert [s["row"] for s in skipped] == [4]


def test_more_held_rows_than_the_limit_are_read_as_rows():
    trailers = ["-----,,,,,,,,,"] * (MAX_HELD_ROWS + 1)
    numbers, skipped = read(csv_bytes(ROW1, *trailers, ROW2))
    assert len(numbers) == MAX_HELD_ROWS + 3 and skipped == []


def test_skip_trailing_rows_when_closed_unread_closes_the_parser_rows():
    closed = []

    def rows():
        try:
            yield SourceRow(2, {"a": "1"})
        finally:
            closed.append(True)

    with open_source(io.BytesIO(csv_bytes(ROW1))) as parsed:
        parsed.rows = rows()
        next(parsed.rows)
        parsed.skip_trailing_rows()
    assert closed == [True]


def test_xlsx_sample_when_rows_follow_the_data_skips_each_and_reads_datetime_cells():
    with open(DATA / "lines_trailing.xlsx", "rb") as fh, open_source(fh) as parsed:
        parsed.skip_trailing_rows(KEYS)
        numbers = [r.number for r in parsed.rows]
    assert numbers == [2, 3, 4]
    assert [(s["row"], s["reason"]) for s in parsed.skipped] == [
        (5, "a totals row"),
        (7, "an end-of-report line"),
        (8, "a signature line"),
        (9, "a signature line"),
    ]


def test_docx_sample_when_merged_signature_row_follows_data_skips_it():
    with open(DATA / "items_trailing.docx", "rb") as fh, open_source(fh) as parsed:
        parsed.skip_trailing_rows(KEYS)
        numbers = [r.number for r in parsed.rows]
    assert numbers == [2, 3, 4]
    assert parsed.skipped == [
        {"row": 5, "reason": "a totals row", "text": "Subtotal | 1,279.49"},
        {"row": 6, "reason": "a signature line", "text": "Signature: ____________  Date: ________"},
    ]


# ---------------------------------------------------------------- the parse job


@pytest.mark.parametrize("name", ["comma_trailing.csv", "lines_trailing.xlsx", "items_trailing.docx"])
def test_clean_file_with_rows_after_data_imports_at_once_and_lists_them(app, partner, name):
    result = upload_bytes(app, (DATA / name).read_bytes(), name=name)
    assert result["status"] == "imported", result
    assert (result["rows_read"], result["imported"], result["rejected"]) == (3, 3, 0)
    assert result["skipped"] >= 2
    with app.app_context():
        upload = db.session.get(Upload, result["upload_id"])
        assert all(s["row"] > 4 and s["reason"] for s in upload.skipped_rows)
        assert "after the data skipped (not line items)" in upload.status_summary.label


def test_totals_row_between_line_items_is_a_problem_row(app, partner):
    result = upload_bytes(app, csv_bytes(ROW1, "Total,,,,,1234.50,,,,", ROW2))
    assert result["status"] == "needs_review"
    assert (result["rejected"], result["skipped"]) == (1, 0)
    with app.app_context():
        (row,) = problem_rows(db.session.get(Upload, result["upload_id"]))
        assert row.row_number == 3


def test_file_of_only_rows_that_are_not_line_items_fails_naming_them(app, partner):
    result = upload_bytes(app, csv_bytes("Total,,,,,0.00,,,,", "End of report"))
    assert result["status"] == "failed"
    assert result["message"] == (
        "The file has no line items, only rows that are not: row 2 (a totals row), "
        "row 3 (an end-of-report line)."
    )


def test_upload_page_shows_skipped_rows_as_their_own_list(app, client, auth, partner):
    result = upload_bytes(app, (DATA / "comma_trailing.csv").read_bytes(), name="comma_trailing.csv")
    auth.login("partner@example.com")
    page = client.get(f"/partner/uploads/{result['upload_id']}").data.decode()
    assert "Skipped after the data (not line items)</dt><dd>3</dd>" in page
    assert 'id="skipped-rows"' in page
    assert "Row 5: a totals row" in page and "Row 8: a signature line" in page


def test_upload_page_when_notes_are_old_plain_text_shows_them(app, client, auth, partner):
    result = upload_bytes(app, csv_bytes(ROW1, ROW2, ROW3))
    with app.app_context():
        db.session.get(Upload, result["upload_id"]).notes = ["Row 9 was skipped as a totals row."]
        db.session.commit()
    auth.login("partner@example.com")
    page = client.get(f"/partner/uploads/{result['upload_id']}").data.decode()
    assert "Row 9 was skipped as a totals row." in page


def test_minor_unit_profile_imports_json_feed_in_each_currency(app, partner):
    with app.app_context():
        columns = {
            "employee_external_id": "employee_id",
            "customer_code": "employer",
            "partner_reference": "transaction_id",
            "expense_type": "fee_type",
            "amount": "amount_cents",
            "currency": "currency",
            "service_date": "service_date",
        }
        profile = {**PROFILE, "columns": columns, "amount_unit": "minor"}
        save_mapping(db.session.scalar(select(Partner)), profile, name="feed")
        db.session.commit()
    result = upload_bytes(app, (DATA / "items_cents.json").read_bytes(), name="items_cents.json")
    assert result["status"] == "imported", result
    with app.app_context():
        got = [
            (li.amount_minor, li.currency, li.service_date.isoformat())
            for li in db.session.scalars(select(LineItem).order_by(LineItem.source_row))
        ]
    assert got == [
        (125050, "USD", "2026-10-05"),
        (125050, "JPY", "2026-10-05"),
        (-1250505, "BHD", "2026-10-05"),
    ]


def test_semicolon_file_when_short_rows_follow_the_data_keeps_its_delimiter():
    data = b"Employee ID;Transaction ID;Amount\nE1;T1;1,50\nE2;T2;2,50\nTotal;;4,00\nEnd of report\n"
    numbers, skipped = read(data, keys=["Employee ID", "Transaction ID"])
    assert numbers == [2, 3]
    assert [s["text"] for s in skipped] == ["Total | 4,00", "End of report"]


def test_row_with_work_email_and_reference_is_data_when_the_profile_names_employees_by_email():
    data = b"Note,Employee ID,Work Email,Ref\nx,E1,,R1\nSigned up late,,ana@acme.example,R2\nTotal,,,\n"
    numbers, skipped = read(data, keys=["Employee ID", "Work Email", "Ref"])
    assert numbers == [2, 3]
    assert [(s["row"], s["reason"]) for s in skipped] == [(4, "a totals row")]
