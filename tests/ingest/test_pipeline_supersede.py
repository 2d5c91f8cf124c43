"""Supersession: importing a corrected file ends the partner's earlier failed or needs-review
uploads of the same name."""

import io

import pytest
from sqlalchemy import select

from portal import accounts, jobs
from portal.extensions import db
from portal.ingest.receive import receive_upload
from portal.ingest.review import UploadStateError, cancel_upload, import_valid_rows
from portal.models import AuditEvent, Partner, Upload, UploadStatus
from tests.samples import ROW1, ROW2, ROW3, csv_bytes

BAD = "E103,Di,ACME,T-4,Tuition,abc,USD,2026-01-15,,"
HEADER_ONLY = csv_bytes()  # a header row and no line items: the upload fails


def receive(app, data: bytes, name: str) -> int:
    """Receive and parse `data` as the partner's file `name`; return the upload id."""
    with app.app_context():
        partner = db.session.scalar(select(Partner).where(Partner.slug == "state-u"))
        upload = receive_upload(partner, io.BytesIO(data), name, user=None, max_bytes=1 << 20)
        db.session.commit()
        upload_id, job_id = upload.id, upload.job_id
        jobs.run_job(job_id)
        return upload_id


def status_of(app, upload_id: int) -> tuple[str, int | None]:
    with app.app_context():
        upload = db.session.get(Upload, upload_id)
        return upload.status.value, upload.superseded_by_id


def superseded_events(app) -> list[tuple[str, dict]]:
    with app.app_context():
        return [
            (e.subject_id, e.details)
            for e in db.session.scalars(
                select(AuditEvent).where(AuditEvent.action == "upload.superseded").order_by(AuditEvent.id)
            )
        ]


def test_supersede_when_corrected_file_imported_marks_failed_and_needs_review_uploads(app, partner):
    failed = receive(app, HEADER_ONLY, "october.csv")
    review = receive(app, csv_bytes(ROW1, BAD), "October.CSV")
    assert [status_of(app, failed)[0], status_of(app, review)[0]] == ["failed", "needs_review"]
    corrected = receive(app, csv_bytes(ROW1, ROW2), "october.csv")
    assert status_of(app, corrected) == ("imported", None)
    assert status_of(app, failed) == ("superseded", corrected)
    assert status_of(app, review) == ("superseded", corrected)


def test_supersede_writes_one_event_per_old_upload_naming_the_new_one(app, partner):
    failed = receive(app, HEADER_ONLY, "october.csv")
    corrected = receive(app, csv_bytes(ROW1), "OCTOBER.csv")
    assert superseded_events(app) == [(str(failed), {"superseded_by": corrected, "filename": "OCTOBER.csv"})]


def test_supersede_when_file_name_differs_leaves_upload_waiting(app, partner):
    review = receive(app, csv_bytes(ROW1, BAD), "october.csv")
    receive(app, csv_bytes(ROW2), "november.csv")
    assert status_of(app, review) == ("needs_review", None)
    assert superseded_events(app) == []


def test_supersede_leaves_cancelled_and_imported_uploads_alone(app, partner):
    cancelled = receive(app, csv_bytes(ROW1, BAD), "october.csv")
    with app.app_context():
        cancel_upload(db.session.get(Upload, cancelled), user=None)
        db.session.commit()
    imported = receive(app, csv_bytes(ROW2), "october.csv")
    receive(app, csv_bytes(ROW3), "october.csv")
    assert status_of(app, cancelled) == ("cancelled", None)
    assert status_of(app, imported) == ("imported", None)


def test_supersede_when_new_upload_only_needs_review_leaves_earlier_failed_upload(app, partner):
    failed = receive(app, HEADER_ONLY, "october.csv")
    receive(app, csv_bytes(ROW1, BAD), "october.csv")
    assert status_of(app, failed) == ("failed", None)


def test_supersede_when_valid_rows_imported_from_review_marks_earlier_upload(app, partner):
    failed = receive(app, HEADER_ONLY, "october.csv")
    review = receive(app, csv_bytes(ROW1, BAD), "october.csv")
    with app.app_context():
        import_valid_rows(db.session.get(Upload, review), user=None)
        db.session.commit()
    assert status_of(app, failed) == ("superseded", review)
    assert status_of(app, review) == ("imported", None)


def test_supersede_ignores_other_partners_uploads_of_same_name(app, partner):
    with app.app_context():
        other = accounts.create_partner(slug="other-p", name="Other")
        db.session.flush()
        theirs = Upload(
            partner_id=other.id,
            filename="october.csv",
            storage_key="uploads/x/original",
            sha256="0" * 64,
            size_bytes=1,
            status=UploadStatus.FAILED,
        )
        db.session.add(theirs)
        db.session.commit()
        theirs_id = theirs.id
    receive(app, csv_bytes(ROW1), "october.csv")
    assert status_of(app, theirs_id) == ("failed", None)


def test_supersede_when_all_rows_held_still_supersedes(app, partner):
    failed = receive(app, HEADER_ONLY, "october.csv")
    held = receive(app, csv_bytes("E999,New,ACME,T-9,Tuition,100.00,USD,2026-01-15,,"), "october.csv")
    assert status_of(app, held)[0] == "imported"
    assert status_of(app, failed) == ("superseded", held)


def test_import_valid_rows_when_superseded_refuses_naming_the_new_upload(app, partner):
    review = receive(app, csv_bytes(ROW1, BAD), "october.csv")
    corrected = receive(app, csv_bytes(ROW1, ROW2), "october.csv")
    with app.app_context():
        upload = db.session.get(Upload, review)
        with pytest.raises(UploadStateError, match=f"superseded by upload #{corrected}"):
            import_valid_rows(upload, user=None)
        with pytest.raises(UploadStateError, match=f"superseded by upload #{corrected}"):
            cancel_upload(upload, user=None)
    assert status_of(app, review) == ("superseded", corrected)


def test_import_valid_rows_when_superseded_by_another_session_is_refused_by_the_guard(app, partner):
    """The Python check saw "needs review"; the guarded UPDATE sees the committed supersession."""
    review = receive(app, csv_bytes(ROW1, BAD), "october.csv")
    with app.app_context():
        stale = db.session.get(Upload, review)  # loaded while it still needs review
        db.session.execute(
            Upload.__table__.update()
            .where(Upload.__table__.c.id == review)
            .values(status=UploadStatus.SUPERSEDED.value)
        )
        assert stale.status == UploadStatus.NEEDS_REVIEW
        with pytest.raises(UploadStateError, match="superseded"):
            import_valid_rows(stale, user=None)
        db.session.rollback()
    assert status_of(app, review)[0] == "needs_review"  # the test's own UPDATE was rolled back too
