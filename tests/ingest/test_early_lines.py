"""The parse job's early lines on PostgreSQL (portal/ingest/early_lines.py): a file staged a chunk at
a time with its line items inserted as it goes decides exactly as the staging-then-import path does,
whatever the file holds. Every case runs both ways, with chunks of two rows so that a file spans
several chunks and the pipeline overlaps reading with inserting."""

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.ingest import early_lines, importing
from portal.models import LineItem, UploadRow
from tests.ingest.test_pipeline import upload_bytes
from tests.samples import ROW1, ROW2, ROW3, csv_bytes

ROW4 = "E103,Di,ACME,T-4,Fees,12.00,USD,2026-01-16,Lab,"
ROW5 = "E104,Ed,ACME,T-5,Tuition,100.00,USD,2026-01-17,Econ 102,"
BAD = "E105,Fa,ACME,T-6,Tuition,abc,USD,2026-01-15,,"
ROW1_CHANGED = ROW1.replace('"1,234.50"', "999.00")
UNKNOWN_T1 = ROW1.replace("E100,Ana", "E999,Zed")  # not on the roster: held in quarantine

# name: (rows imported before by another file, the file's rows, expected counts, expected lines)
CASES = {
    "clean over three chunks": (
        [],
        [ROW1, ROW2, ROW3, ROW4, ROW5],
        {"status": "imported", "rows_read": 5, "imported": 5, "duplicates": 0, "conflicts": 0},
        ["T-1", "T-2", "T-3", "T-4", "T-5"],
    ),
    "a rejected row in the second chunk": (
        [],
        [ROW1, ROW2, BAD, ROW3],
        {"status": "needs_review", "rows_read": 4, "imported": 0, "rejected": 1},
        [],
    ),
    "a row repeated in a later chunk": (
        [],
        [ROW1, ROW2, ROW1],
        {"status": "imported", "rows_read": 3, "imported": 2, "duplicates": 1, "conflicts": 0},
        ["T-1", "T-2"],
    ),
    "a reference repeated with other content": (
        [],
        [ROW1, ROW2, ROW1_CHANGED, ROW3],
        {"status": "needs_review", "rows_read": 4, "imported": 0, "conflicts": 1},
        [],
    ),
    "a row repeated within one chunk": (
        [],
        [ROW1, ROW1, ROW2],
        {"status": "imported", "rows_read": 3, "imported": 2, "duplicates": 1},
        ["T-1", "T-2"],
    ),
    "rows another file imported already": (
        [ROW1],
        [ROW1, ROW2, ROW3],
        {"status": "imported", "rows_read": 3, "imported": 2, "duplicates": 1},
        ["T-1", "T-2", "T-3"],
    ),
    "a held row first, then its reference": (
        [],
        [UNKNOWN_T1, ROW2, ROW1],
        {"status": "needs_review", "rows_read": 3, "imported": 0, "quarantined": 1, "conflicts": 1},
        [],
    ),
}


@pytest.mark.parametrize("backend", ["postgresql"])
@pytest.mark.parametrize("early", [True, False], ids=["early lines", "stage then import"])
@pytest.mark.parametrize("case", list(CASES))
def test_early_lines_decide_as_the_import_does(app, partner, monkeypatch, backend, case, early):
    before, rows, expected, references = CASES[case]
    if before:
        upload_bytes(app, csv_bytes(*before), name="earlier.csv")
    monkeypatch.setattr(early_lines, "CHUNK_ROWS", 2)
    if not early:
        monkeypatch.setattr(early_lines, "usable", lambda upload: False)
    result = upload_bytes(app, csv_bytes(*rows))
    assert {key: result[key] for key in expected} == expected
    with app.app_context():
        got = db.session.scalars(
            select(LineItem.partner_reference).order_by(LineItem.partner_reference)
        ).all()
        assert got == references
        # Each line once, traced to its row; every row of the file staged once, in file order.
        lines = db.session.execute(select(LineItem.upload_id, LineItem.source_row)).all()
        assert len(set(lines)) == len(lines)
        staged = db.session.scalars(
            select(UploadRow.row_number)
            .where(UploadRow.upload_id == result["upload_id"])
            .order_by(UploadRow.id)
        ).all()
        assert staged == list(range(2, len(rows) + 2))


@pytest.mark.parametrize("backend", ["postgresql"])
def test_clean_file_keeps_its_early_lines_without_a_second_insert(app, partner, monkeypatch, backend):
    """The early lines are the import: the INSERT of the staged rows does not run again."""
    monkeypatch.setattr(early_lines, "CHUNK_ROWS", 2)
    kept = []
    settle = early_lines.settle
    monkeypatch.setattr(early_lines, "settle", lambda *a, **k: kept.append(settle(*a, **k)) or kept[-1])

    def no_second_insert(*args, **kwargs):
        raise AssertionError("the accepted rows were inserted again")

    monkeypatch.setattr(importing, "insert_lines", no_second_insert)
    result = upload_bytes(app, csv_bytes(ROW1, ROW2, ROW3, ROW4, ROW5))
    assert (result["status"], result["imported"], kept) == ("imported", 5, [True])


@pytest.mark.parametrize("backend", ["postgresql"])
def test_file_that_waits_for_review_leaves_no_early_line(app, partner, monkeypatch, backend):
    """A conflict found only after every chunk was inserted: the early lines are deleted again."""
    monkeypatch.setattr(early_lines, "CHUNK_ROWS", 2)
    inserted = []
    stage = early_lines.stage

    def stage_and_note(*args, **kwargs):
        staged, early = stage(*args, **kwargs)
        inserted.append(early.inserted)
        return staged, early

    monkeypatch.setattr(early_lines, "stage", stage_and_note)
    result = upload_bytes(app, csv_bytes(ROW1, ROW2, ROW3, ROW4, ROW1_CHANGED))
    assert result["status"] == "needs_review"
    assert inserted == [4]
    with app.app_context():
        assert db.session.scalars(select(LineItem.id)).all() == []
