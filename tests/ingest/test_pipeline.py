"""The upload pipeline on a real database: receive, parse, stage, classify, import exactly once."""

import io
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal import jobs
from portal.extensions import db
from portal.ingest.mapping import MappingError
from portal.ingest.profiles import save_mapping
from portal.ingest.quarantine import quarantined_employees, release_quarantine
from portal.ingest.receive import UploadRefused, receive_upload
from portal.ingest.reports import error_file, problem_rows, row_messages, summary
from portal.ingest.review import UploadStateError, cancel_upload, import_valid_rows, remap_upload
from portal.models import AuditEvent, Customer, Employee, JobRecord, LineItem, Partner, Upload, UploadStatus
from tests.samples import PROFILE, ROW1, ROW2, ROW3, csv_bytes

DATA = Path(__file__).resolve().parents[1] / "data"


def upload_bytes(app, data: bytes, name="lines.csv", run=True, partner_slug="state-u"):
    """Receive `data` as the partner would and run its parse job; return the upload's summary."""
    with app.app_context():
        p = db.session.scalar(select(Partner).where(Partner.slug == partner_slug))
        upload = receive_upload(p, io.BytesIO(data), name, user=None, max_bytes=10 * 1024 * 1024)
        db.session.commit()
        upload_id, job_id = upload.id, upload.job_id
        if run:
            jobs.run_job(job_id)
        return summary(db.session.get(Upload, upload_id))


def lines(app):
    with app.app_context():
        return db.session.scalars(select(LineItem).order_by(LineItem.source_row)).all()


def actions(app):
    with app.app_context():
        return [e.action for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def test_clean_file_imports_straight_away(app, partner):
    result = upload_bytes(app, csv_bytes(ROW1, ROW2, ROW3))
    assert result["status"] == "imported"
    assert (result["rows_read"], result["accepted"], result["imported"]) == (3, 3, 3)
    got = [
        (li.partner_reference, li.amount_minor, li.currency, li.expense_type, li.source_row)
        for li in lines(app)
    ]
    assert got == [
        ("T-1", 123450, "USD", "tuition", 2),
        ("T-2", 8999, "USD", "materials", 3),
        ("T-3", -4500, "USD", "tutoring", 4),
    ]


def test_clean_file_lines_trace_back_to_upload_and_row(app, partner):
    result = upload_bytes(app, csv_bytes(ROW1))
    line = lines(app)[0]
    assert (line.upload_id, line.source_row) == (result["upload_id"], 2)


def test_clean_file_writes_received_parsed_imported_events(app, partner):
    upload_bytes(app, csv_bytes(ROW1))
    assert [a for a in actions(app) if a.startswith("upload.")] == [
        "upload.received",
        "upload.parsed",
        "upload.imported",
    ]


def test_original_file_is_stored_with_sha256(app, partner):
    data = csv_bytes(ROW1)
    result = upload_bytes(app, data)
    with app.app_context():
        upload = db.session.get(Upload, result["upload_id"])
        from portal.core.storage import get_storage

        assert get_storage().open(upload.storage_key).read() == data
        import hashlib

        assert upload.sha256 == hashlib.sha256(data).hexdigest()


def test_identical_reupload_is_refused_naming_earlier_upload(app, partner):
    first = upload_bytes(app, csv_bytes(ROW1))
    with pytest.raises(UploadRefused, match=f"identical to upload #{first['upload_id']}"):
        upload_bytes(app, csv_bytes(ROW1), name="again.csv")
    assert len(lines(app)) == 1


def test_empty_upload_is_refused(app, partner):
    with pytest.raises(UploadRefused, match="empty.csv is empty"):
        upload_bytes(app, b"", name="empty.csv")


def test_upload_over_size_limit_is_refused(app, partner):
    with app.app_context():
        p = db.session.get(Partner, partner)
        with pytest.raises(UploadRefused, match="larger than the 1 MB limit"):
            receive_upload(
                p, io.BytesIO(b"x" * (1024 * 1024 + 1)), "big.csv", user=None, max_bytes=1024 * 1024
            )


def test_file_name_is_never_a_path(app, partner):
    result = upload_bytes(app, csv_bytes(ROW1), name="../../etc/passwd")
    with app.app_context():
        upload = db.session.get(Upload, result["upload_id"])
        assert upload.filename == "passwd"
        assert upload.storage_key.startswith(f"uploads/{partner}/")


def test_rejected_rows_stop_upload_at_needs_review(app, partner):
    bad = "E103,Di,ACME,T-4,Tuition,12.345,USD,2026-01-15,,"
    result = upload_bytes(app, csv_bytes(ROW1, bad))
    assert result["status"] == "needs_review"
    assert (result["accepted"], result["rejected"], result["imported"]) == (1, 1, 0)
    assert lines(app) == []


def test_rejected_rows_name_row_field_and_reason(app, partner):
    bad = "E103,Di,NOPE,T-4,Tuition,12.345,XXX,2026-02-30,,"
    result = upload_bytes(app, csv_bytes(ROW1, bad))
    with app.app_context():
        upload = db.session.get(Upload, result["upload_id"])
        (row,) = problem_rows(upload)
        fields = {p["field"]: p for p in row_messages(row)}
    assert row.row_number == 3
    assert {"amount", "currency", "service_date"} <= set(fields)
    assert fields["service_date"]["value"] == "2026-02-30"


def test_unknown_customer_is_rejected(app, partner):
    result = upload_bytes(app, csv_bytes("E100,Ana,NOPE,T-9,Tuition,10.00,USD,2026-01-15,,"))
    with app.app_context():
        (row,) = problem_rows(db.session.get(Upload, result["upload_id"]))
        assert row_messages(row)[0]["message"] == "'NOPE' is not a known customer code"


def test_import_valid_rows_imports_only_valid_ones(app, partner):
    result = upload_bytes(app, csv_bytes(ROW1, "E103,Di,ACME,T-4,Tuition,abc,USD,2026-01-15,,"))
    with app.app_context():
        import_valid_rows(db.session.get(Upload, result["upload_id"]), user=None)
        db.session.commit()
        assert db.session.get(Upload, result["upload_id"]).status == UploadStatus.IMPORTED
    assert [li.partner_reference for li in lines(app)] == ["T-1"]


def test_cancel_imports_nothing_and_allows_same_file_again(app, partner):
    data = csv_bytes(ROW1, "E103,Di,ACME,T-4,Tuition,abc,USD,2026-01-15,,")
    result = upload_bytes(app, data)
    with app.app_context():
        cancel_upload(db.session.get(Upload, result["upload_id"]), user=None)
        db.session.commit()
    assert lines(app) == []
    assert "upload.cancelled" in actions(app)
    assert upload_bytes(app, data)["status"] == "needs_review"


def test_cancel_when_imported_is_refused(app, partner):
    result = upload_bytes(app, csv_bytes(ROW1))
    with (
        app.app_context(),
        pytest.raises(UploadStateError, match="imported and cannot be cancelled"),
    ):
        cancel_upload(db.session.get(Upload, result["upload_id"]), user=None)


def test_duplicate_across_files_is_skipped_and_reported(app, partner):
    upload_bytes(app, csv_bytes(ROW1))
    result = upload_bytes(app, csv_bytes(ROW1, ROW2), name="second.csv")
    assert result["status"] == "imported"
    assert (result["duplicates"], result["imported"]) == (1, 1)
    assert len(lines(app)) == 2


def test_conflict_across_files_is_held_and_never_overwrites(app, partner):
    upload_bytes(app, csv_bytes(ROW1))
    changed = ROW1.replace('"1,234.50"', "999.00")
    result = upload_bytes(app, csv_bytes(changed, ROW2), name="second.csv")
    assert result["status"] == "needs_review"
    assert result["conflicts"] == 1
    with app.app_context():
        upload = db.session.get(Upload, result["upload_id"])
        (row,) = problem_rows(upload)
        assert "already used by line #" in row_messages(row)[0]["message"]
        import_valid_rows(upload, user=None)
        db.session.commit()
    assert [(li.partner_reference, li.amount_minor) for li in lines(app)] == [("T-1", 123450), ("T-2", 8999)]


def test_reference_taken_while_upload_waits_for_review_is_held_not_doubled(app, partner):
    """Another upload imports one of the references while this one waits for review: importing its
    valid rows meets the unique key, the plain INSERT's savepoint rolls back, and the rows go in
    again with the taken reference held as a conflict. Nothing is lost or doubled."""
    bad = "E103,Di,ACME,T-4,Tuition,abc,USD,2026-01-15,,"
    waiting = upload_bytes(app, csv_bytes(ROW2, ROW3, bad))
    assert waiting["status"] == "needs_review"
    other = upload_bytes(app, csv_bytes(ROW2.replace("89.99", "79.99")), name="other.csv")
    assert other["imported"] == 1
    with app.app_context():
        upload = db.session.get(Upload, waiting["upload_id"])
        import_valid_rows(upload, user=None)
        db.session.commit()
        result = summary(db.session.get(Upload, waiting["upload_id"]))
    assert (result["status"], result["imported"], result["conflicts"]) == ("imported", 1, 1)
    got = sorted((li.partner_reference, li.amount_minor, li.upload_id) for li in lines(app))
    assert got == [("T-2", 7999, other["upload_id"]), ("T-3", -4500, waiting["upload_id"])]


def test_duplicates_inside_one_file_are_told_apart_from_conflicts(app, partner):
    conflict = ROW1.replace("Econ 101", "Econ 102")
    result = upload_bytes(app, csv_bytes(ROW1, ROW1, conflict))
    assert (result["accepted"], result["duplicates"], result["conflicts"]) == (1, 1, 1)


def test_unknown_employee_is_quarantined_and_upload_imported(app, partner):
    result = upload_bytes(app, csv_bytes(ROW1, "E999,New Person,ACME,T-5,Tuition,100.00,USD,2026-01-15,,"))
    assert result["status"] == "imported"
    assert (result["imported"], result["quarantined"]) == (1, 1)
    with app.app_context():
        (held,) = quarantined_employees()
        assert (held["external_id"], held["name"], held["rows"], held["amount_minor"]) == (
            "E999",
            "New Person",
            1,
            10000,
        )


def test_quarantine_release_imports_held_rows(app, partner):
    result = upload_bytes(app, csv_bytes("E999,New Person,ACME,T-5,Tuition,100.00,USD,2026-01-15,,"))
    with app.app_context():
        acme = db.session.scalar(select(Customer).where(Customer.code == "ACME"))
        employee = Employee(customer_id=acme.id, external_id="E999", name="New Person")
        db.session.add(employee)
        db.session.flush()
        assert release_quarantine(acme, "E999", employee, user=None) == 1
        db.session.commit()
        upload = db.session.get(Upload, result["upload_id"])
        assert (upload.imported, upload.quarantined) == (1, 0)
        assert quarantined_employees() == []
        assert [li.employee.external_id for li in db.session.scalars(select(LineItem))] == ["E999"]
    assert "quarantine.released" in actions(app)


def test_quarantine_release_when_run_twice_imports_once(app, partner):
    upload_bytes(app, csv_bytes("E999,New Person,ACME,T-5,Tuition,100.00,USD,2026-01-15,,"))
    with app.app_context():
        acme = db.session.scalar(select(Customer).where(Customer.code == "ACME"))
        employee = db.session.scalar(
            select(Employee).where(Employee.customer_id == acme.id, Employee.external_id == "E100")
        )
        release_quarantine(acme, "E999", employee, user=None)
        db.session.commit()
        assert release_quarantine(acme, "E999", employee, user=None) == 0
        db.session.commit()
    assert len(lines(app)) == 1


def test_parse_job_when_run_again_never_inserts_twice(app, partner):
    result = upload_bytes(app, csv_bytes(ROW1, ROW2))
    with app.app_context():
        upload = db.session.get(Upload, result["upload_id"])
        # A crash after the import but before the job was marked done: the job runs again.
        upload.status = UploadStatus.PARSING
        record = db.session.get(JobRecord, upload.job_id)
        record.status = "enqueued"
        db.session.commit()
        jobs.run_job(upload.job_id)
        assert db.session.scalar(select(func.count(LineItem.id))) == 2
        assert db.session.get(Upload, upload.id).imported == 2


def test_parse_job_when_pushed_twice_runs_once(app, partner):
    upload_bytes(app, csv_bytes(ROW1), run=False)
    with app.app_context():
        job_id = db.session.scalar(select(Upload.job_id))
        jobs.push_to_rq([job_id])
    from portal.jobs.workers import drain

    drain(app)
    drain(app)
    assert len(lines(app)) == 1


def test_headers_no_profile_covers_need_mapping(app, partner):
    result = upload_bytes(app, b"Student,Cost,When,Ref,Kind,Company\nE100,10.00,2026-01-01,R1,Tuition,ACME\n")
    assert result["status"] == "needs_mapping"
    with app.app_context():
        assert db.session.get(Upload, result["upload_id"]).headers == [
            "Student",
            "Cost",
            "When",
            "Ref",
            "Kind",
            "Company",
        ]


def test_saved_mapping_then_remap_imports_upload(app, partner):
    result = upload_bytes(app, b"Student,Cost,When,Ref,Kind,Company\nE100,10.00,2026-01-01,R1,Tuition,ACME\n")
    profile = {
        **PROFILE,
        "columns": {
            "employee_external_id": "Student",
            "amount": "Cost",
            "service_date": "When",
            "partner_reference": "Ref",
            "expense_type": "Kind",
            "customer_code": "Company",
        },
    }
    with app.app_context():
        p = db.session.get(Partner, partner)
        version = save_mapping(p, profile, name="registrar")
        upload = db.session.get(Upload, result["upload_id"])
        remap_upload(upload, user=None)
        db.session.commit()
        jobs.run_job(upload.job_id)
        upload = db.session.get(Upload, result["upload_id"])
        assert upload.status == UploadStatus.IMPORTED
        assert upload.mapping_profile_id == version.id
    assert [li.amount_minor for li in lines(app)] == [1000]


def test_save_mapping_versions_and_records_before_after(app, partner):
    with app.app_context():
        p = db.session.get(Partner, partner)
        version = save_mapping(p, {**PROFILE, "default_currency": "EUR"})
        db.session.commit()
        assert version.version == 2
        event = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "mapping.saved").order_by(AuditEvent.id.desc())
        ).first()
        assert event.details["before"]["default_currency"] == "USD"
        assert event.details["after"]["default_currency"] == "EUR"


def test_save_mapping_when_invalid_lists_every_problem(app, partner):
    with app.app_context(), pytest.raises(MappingError) as info:
        save_mapping(
            db.session.get(Partner, partner),
            {**PROFILE, "columns": {"amount": "Amount"}, "decimal_separator": ";"},
        )
    text = " ".join(info.value.problems)
    assert "required field 'partner_reference' is not mapped" in text
    assert "decimal separator" in text


@pytest.mark.parametrize(
    "name,message",
    [
        ("png_renamed.csv", "not a supported format"),
        ("header_only.csv", "header row but no line items"),
        ("inconsistent_columns.csv", "columns"),
        ("bomb.xlsx", "decompression bomb"),
    ],
)
def test_whole_file_problem_fails_upload_with_one_message(app, partner, name, message):
    result = upload_bytes(app, (DATA / name).read_bytes(), name=name)
    assert result["status"] == "failed"
    assert message in result["message"]
    assert lines(app) == []


@pytest.mark.parametrize(
    "name",
    [
        "lines.xlsx",
        "items.json",
        "items.jsonl",
        "items.docx",
        "quoted.csv",
        "utf16le_bom.csv",
        "tab.tsv",
        "pipe.txt",
        "crlf.csv",
        "utf8_bom.csv",
    ],
)
def test_sample_files_of_every_format_import(app, partner, name):
    result = upload_bytes(app, (DATA / name).read_bytes(), name=name)
    assert result["status"] == "imported", result
    assert result["imported"] >= 2
    assert result["rejected"] == 0


def test_european_profile_reads_semicolon_file(app, partner):
    with app.app_context():
        save_mapping(db.session.get(Partner, partner), {**PROFILE, "decimal_separator": ","})
        db.session.commit()
    result = upload_bytes(app, (DATA / "semicolon.csv").read_bytes(), name="semicolon.csv")
    assert result["status"] == "imported", result
    assert lines(app)[0].amount_minor == 123450


def test_error_file_has_original_row_and_error_column(app, partner):
    result = upload_bytes(app, csv_bytes(ROW1, "E103,Di,ACME,T-4,Tuition,=1+2,USD,2026-01-15,,"))
    with app.app_context():
        text = "".join(error_file(db.session.get(Upload, result["upload_id"])))
    header, row = text.strip().splitlines()
    assert header.startswith("row,Employee ID,") and header.endswith(",error")
    assert row.startswith("3,E103,Di,ACME,T-4,Tuition,'=1+2,")
    assert "amount:" in row


def test_cli_ingest_prints_summary(app, partner, runner, tmp_path):
    path = tmp_path / "lines.csv"
    path.write_bytes(csv_bytes(ROW1, ROW2))
    result = runner.invoke(args=["ingest", str(path), "--partner", "state-u"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert (summary["status"], summary["rows_read"], summary["imported"]) == ("imported", 2, 2)


def test_cli_ingest_accept_valid_imports_valid_rows(app, partner, runner, tmp_path):
    path = tmp_path / "lines.csv"
    path.write_bytes(csv_bytes(ROW1, "E103,Di,ACME,T-4,Tuition,abc,USD,2026-01-15,,"))
    plain = runner.invoke(args=["ingest", str(path), "--partner", "state-u"])
    assert plain.exit_code == 1 and json.loads(plain.output)["status"] == "needs_review"
    path.write_bytes(csv_bytes(ROW2, "E103,Di,ACME,T-4,Tuition,abc,USD,2026-01-15,,"))
    accepted = runner.invoke(args=["ingest", str(path), "--partner", "state-u", "--accept-valid"])
    assert accepted.exit_code == 0
    assert json.loads(accepted.output)["imported"] == 1


def test_cli_mappings_export_import_round_trip(app, partner, runner, tmp_path):
    out = tmp_path / "profile.json"
    assert runner.invoke(args=["mappings", "export", "--partner", "state-u", str(out)]).exit_code == 0
    assert json.loads(out.read_text()) == PROFILE
    result = runner.invoke(args=["mappings", "import", "--partner", "state-u", str(out)])
    assert "Saved state-u profile 'default' version 2" in result.output


def test_cli_mappings_import_when_invalid_lists_problems(app, partner, runner, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**PROFILE, "default_currency": "XXY"}))
    result = runner.invoke(args=["mappings", "import", "--partner", "state-u", str(bad)])
    assert result.exit_code != 0
    assert "default currency 'XXY' is not an ISO 4217 currency code" in result.output


def test_parse_job_reports_rows_read_as_it_goes(app, partner, monkeypatch):
    """The job's progress counts the rows read every CHUNK_ROWS rows and once at the end."""
    from portal.ingest import parse

    reported = []
    monkeypatch.setattr(parse, "CHUNK_ROWS", 2)
    monkeypatch.setattr(parse.jobs, "set_progress", lambda job_id, **progress: reported.append(progress))
    bad = "E103,Di,ACME,T-4,Tuition,abc,USD,2026-01-15,,"
    result = upload_bytes(app, csv_bytes(ROW1, ROW2, bad, ROW3, ROW1.replace("T-1", "T-5")))
    assert result["rows_read"] == 5
    assert reported == [{"rows": n, "phase": "reading rows"} for n in (2, 4, 5)]
