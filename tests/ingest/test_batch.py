"""A batch of line items sent as data: stored as a JSON original and judged row by row exactly as a
file's rows are (portal.ingest.batch)."""

import json

import pytest
from sqlalchemy import select

from portal.core.storage import get_storage
from portal.extensions import db
from portal.ingest.batch import MAX_BATCH_ITEMS, BatchRefused, receive_batch, row_outcomes
from portal.ingest.receive import UploadRefused
from portal.models import AuditEvent, LineItem, Partner, Upload

MAX_BYTES = 10 * 1024 * 1024


def item(reference="T-1", **fields):
    return {
        "employee_external_id": "E100",
        "customer_code": "ACME",
        "partner_reference": reference,
        "expense_type": "Tuition",
        "amount": "1234.50",
        "currency": "USD",
        "service_date": "2026-01-15",
        "description": "Econ 101",
        **fields,
    }


def send(app, items, **kwargs):
    with app.app_context():
        p = db.session.scalar(select(Partner).where(Partner.slug == "state-u"))
        upload = receive_batch(p, items, user=None, max_bytes=MAX_BYTES, **kwargs)
        return upload.id, upload.status.value, upload.counts(), row_outcomes(upload)


def test_clean_batch_is_imported_at_once(app, partner):
    upload_id, status, counts, rows = send(app, [item("T-1"), item("T-2", amount=89.99)])
    assert status == "imported"
    assert (counts["rows_read"], counts["imported"]) == (2, 2)
    assert [(r["row"], r["outcome"], r["problems"]) for r in rows] == [
        (1, "accepted", []),
        (2, "accepted", []),
    ]
    with app.app_context():
        amounts = db.session.scalars(select(LineItem.amount_minor).order_by(LineItem.source_row)).all()
    assert amounts == [123450, 8999]


def test_bad_rows_are_rejected_with_field_and_reason_like_a_file(app, partner):
    _, status, counts, rows = send(
        app, [item("T-1"), item("T-2", amount="12.345"), item("T-3", expense_type="Lunch", service_date="")]
    )
    assert status == "needs_review"
    assert (counts["accepted"], counts["rejected"]) == (1, 2)
    assert rows[1]["problems"] == [
        {"field": "amount", "value": "12.345", "message": rows[1]["problems"][0]["message"]}
    ]
    assert "decimal" in rows[1]["problems"][0]["message"] or "cent" in rows[1]["problems"][0]["message"]
    assert {p["field"] for p in rows[2]["problems"]} == {"expense_type", "service_date"}


def test_unknown_employee_is_quarantined_and_unknown_customer_rejected(app, partner):
    _, _, counts, rows = send(
        app, [item("T-1", employee_external_id="E999"), item("T-2", customer_code="NOPE")]
    )
    assert [r["outcome"] for r in rows] == ["quarantined", "rejected"]
    assert rows[1]["problems"][0]["field"] == "customer_code"
    assert counts["quarantined"] == 1


def test_employee_may_be_named_by_work_email_alone(app, partner):
    with app.app_context():
        from portal.models import Employee

        db.session.scalar(select(Employee).where(Employee.external_id == "E101")).email = "bo@acme.example"
        db.session.commit()
    _, status, _, rows = send(app, [item("T-1", employee_external_id=None, employee_email="BO@acme.example")])
    assert (status, rows[0]["outcome"]) == ("imported", "accepted")


def test_reference_already_imported_is_duplicate_or_conflict(app, partner):
    send(app, [item("T-1")], name="first")
    _, _, _, rows = send(app, [item("T-1"), item("T-9", amount="1"), item("T-9", amount="2")], name="second")
    assert [r["outcome"] for r in rows] == ["duplicate", "accepted", "conflict"]
    assert rows[2]["problems"][0]["field"] == "partner_reference"


def test_batch_is_stored_as_json_original_and_audited(app, partner):
    upload_id, *_ = send(app, [item("T-1", amount=12)])
    with app.app_context():
        upload = db.session.get(Upload, upload_id)
        stored = json.loads(get_storage().open(upload.storage_key).read())
        actions = db.session.scalars(
            select(AuditEvent.action).where(AuditEvent.action.like("upload.%")).order_by(AuditEvent.id)
        ).all()
    assert stored[0]["amount"] == "12" and stored[0]["partner_reference"] == "T-1"
    assert (upload.file_format, upload.job_id) == ("json", None)
    assert list(actions)[:3] == ["upload.received", "upload.parsed", "upload.imported"]


def test_identical_batch_is_refused_naming_the_earlier_upload(app, partner):
    upload_id, *_ = send(app, [item("T-1")])
    with pytest.raises(UploadRefused, match=f"identical to upload #{upload_id}"):
        send(app, [item("T-1")])


def test_corrected_batch_under_same_name_supersedes_the_one_waiting(app, partner):
    first, status, *_ = send(app, [item("T-1", amount="x")], name="october")
    assert status == "needs_review"
    send(app, [item("T-1")], name="october")
    with app.app_context():
        assert db.session.get(Upload, first).status.value == "superseded"


def test_batch_over_the_limit_is_refused_before_anything_is_stored(app, partner):
    with pytest.raises(BatchRefused, match="10,001 items"):
        send(app, [item(f"T-{n}") for n in range(MAX_BATCH_ITEMS + 1)])
    with app.app_context():
        assert db.session.scalar(select(Upload.id)) is None


def test_unknown_field_is_refused(app, partner):
    with pytest.raises(BatchRefused, match="'ammount'"):
        send(app, [item("T-1", ammount="1")])


def test_nul_in_a_value_fails_the_batch_like_a_file(app, partner):
    _, status, _, rows = send(app, [item("T-1", description="a\x00b")])
    assert status == "failed" and rows == []


def test_a_failure_on_our_side_fails_the_batch_so_it_can_be_sent_again(app, partner, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from portal.ingest import batch

    def broken(*args, **kwargs):
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    monkeypatch.setattr(batch, "read_upload", broken)
    with pytest.raises(OperationalError):
        send(app, [item("T-1")])
    with app.app_context():
        upload = db.session.scalar(select(Upload))
        assert (upload.status.value, upload.message) == ("failed", batch.OUR_FAILURE)
    monkeypatch.undo()
    _, status, _, _ = send(app, [item("T-1")])
    assert status == "imported"
