"""Hostile and broken files end their upload as `failed` on the first run, with a message and no rows.
Only the machine failing (the database, storage) leaves the job to be retried."""

import io
import json
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from portal import jobs
from portal.extensions import db
from portal.ingest import limits, parse
from portal.ingest.formats import delimited
from portal.ingest.receive import receive_upload
from portal.models import AuditEvent, JobRecord, LineItem, Partner, Upload, UploadRow, UploadStatus
from tests.samples import HEADER, ROW1, csv_bytes

DATA = Path(__file__).resolve().parents[1] / "data"


def _zip(members: dict[str, bytes | str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _wide_csv(columns: int) -> bytes:
    return (
        ",".join(f"c{i}" for i in range(columns)) + "\n" + ",".join("1" for _ in range(columns)) + "\n"
    ).encode()


HOSTILE = {
    "first_row_bad_quote.csv": (
        (HEADER + 'E100,"Ana"x,ACME,T-1,Tuition,10.00,USD,2026-01-15,Econ 101,Spring\n').encode(),
        "Row 2 could not be read",
    ),
    "deep.json": (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    "deep.jsonl": (b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n", "Row 1 is nested too deeply"),
    "wide.csv": (_wide_csv(100_000), "The file has 100,000 columns; at most 200 are read"),
    "wide_in_sample.csv": (_wide_csv(250), "The file has 250 columns; at most 200 are read"),
    "megabyte_header.csv": (
        ("H" * (1024 * 1024) + ",Amount\n1,2\n").encode(),
        "The header row is more than 65,536 characters long; at most 20,000 are read",
    ),
    "long_name.csv": (("N" * 300 + ",Amount\n1,2\n").encode(), "is 300 characters long"),
    "truncated.xlsx": ((DATA / "lines.xlsx").read_bytes()[:3000], "damaged"),
    "no_workbook_part.xlsx": (
        _zip({"[Content_Types].xml": "<Types/>", "xl/workbook.xml": "<workbook/>"}),
        "Could not open the Excel workbook",
    ),
    "truncated.docx": ((DATA / "items.docx").read_bytes()[:3000], "damaged"),
    "broken_package.docx": (
        _zip({"[Content_Types].xml": "<Types/>", "word/document.xml": "<document/>"}),
        "Could not open the Word document",
    ),
    "nul_after_head.csv": (
        csv_bytes(
            *(ROW1.replace("T-1", f"T-{i}") for i in range(1, 1500)),
            ROW1.replace("T-1", "T-X").replace("Econ 101", "Ec\x00on"),
        ),
        "Row 1501 holds a NUL character",
    ),
    "long_cell.json": (
        json.dumps([{"Employee ID": "E100", "Course": "x" * (limits.MAX_CELL_CHARS + 1)}]).encode(),
        "Row 1 has a cell longer than 32,768 characters",
    ),
}


def _receive(app, data: bytes, name: str) -> tuple[int, str]:
    with app.app_context():
        partner = db.session.scalar(select(Partner).where(Partner.slug == "state-u"))
        upload = receive_upload(partner, io.BytesIO(data), name, user=None, max_bytes=20 * 1024 * 1024)
        db.session.commit()
        return upload.id, upload.job_id


def _outcome(app, upload_id: int) -> dict:
    with app.app_context():
        upload = db.session.get(Upload, upload_id)
        record = db.session.get(JobRecord, upload.job_id)
        failed_events = db.session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "upload.failed", AuditEvent.subject_id == str(upload_id)
            )
        ).all()
        return {
            "status": upload.status,
            "message": upload.message,
            "staged": db.session.scalar(
                select(func.count(UploadRow.id)).where(UploadRow.upload_id == upload_id)
            ),
            "lines": db.session.scalar(select(func.count(LineItem.id))),
            "job": (record.status.value, record.attempts),
            "audit": [e.details.get("message") for e in failed_events],
        }


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_file_when_parsed_fails_on_first_run_with_message(app, partner, name):
    data, expected = HOSTILE[name]
    upload_id, job_id = _receive(app, data, name)
    with app.app_context():
        jobs.run_job(job_id)
    outcome = _outcome(app, upload_id)
    assert outcome["status"] == UploadStatus.FAILED
    assert expected in outcome["message"]
    assert (outcome["staged"], outcome["lines"]) == (0, 0)
    assert outcome["job"] == ("done", 1)  # final: not left to be retried
    assert outcome["audit"] == [outcome["message"]]


def test_unexpected_parser_error_when_reading_rows_fails_upload_naming_row(app, partner, monkeypatch):
    original = delimited.DelimitedParser._rows

    def rows_then_explode(self, state, text, headers):  # a library failing in a way nobody listed
        rows = original(self, state, text, headers)
        yield next(rows)
        raise LookupError("codec table broken")

    monkeypatch.setattr(delimited.DelimitedParser, "_rows", rows_then_explode)
    upload_id, job_id = _receive(app, csv_bytes(ROW1, ROW1.replace("T-1", "T-2")), "lines.csv")
    with app.app_context():
        jobs.run_job(job_id)
    outcome = _outcome(app, upload_id)
    assert outcome["status"] == UploadStatus.FAILED
    assert outcome["message"] == (
        "The file could be read up to row 2, then it could not be read (LookupError: codec table broken)."
    )
    assert outcome["job"] == ("done", 1)


def test_database_failure_while_parsing_leaves_job_to_retry(app, partner, monkeypatch):
    def database_down(*args, **kwargs):
        raise OperationalError("SELECT", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(parse, "choose_profile", database_down)
    upload_id, job_id = _receive(app, csv_bytes(ROW1), "lines.csv")
    with app.app_context(), pytest.raises(OperationalError):
        jobs.run_job(job_id)
    outcome = _outcome(app, upload_id)
    assert outcome["status"] == UploadStatus.PARSING
    assert outcome["job"] == ("retrying", 1)
    monkeypatch.undo()
    with app.app_context():
        db.session.get(JobRecord, job_id).status = "enqueued"
        db.session.commit()
        jobs.run_job(job_id)
    assert _outcome(app, upload_id)["status"] == UploadStatus.IMPORTED


def test_mapping_page_when_upload_has_more_headers_than_cap_offers_only_cap(app, partner, client, auth):
    upload_id, job_id = _receive(app, b"Student,Cost\nE100,10\n", "wide.csv")
    with app.app_context():
        jobs.run_job(job_id)
        upload = db.session.get(Upload, upload_id)
        assert upload.status == UploadStatus.NEEDS_MAPPING
        # As recorded before the cap existed.
        upload.headers = ["Student", "Cost", *(f"extra {i}" for i in range(5000))]
        db.session.commit()
    auth.login("partner@example.com")
    page = client.get(f"/partner/uploads/{upload_id}/mapping").data.decode()
    assert "extra 197" in page
    assert "extra 198" not in page
