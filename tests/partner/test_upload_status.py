"""What an upload's pages say happened: the status summary, held rows, supersession, and where an
upload lands (its own page after a POST, or the form again with the reason it was refused)."""

import io

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.jobs.workers import drain
from portal.models import AuditEvent, Customer, JobRecord, JobStatus, Upload, UploadStatus
from portal.models.uploads import status_summary
from portal.web import uploads as upload_views
from tests.samples import ROW1, ROW2, csv_bytes

BAD = "E103,Di,ACME,T-4,Tuition,abc,USD,2026-01-15,,"
UNKNOWN = "E999,New Person,ACME,T-9,Tuition,100.00,USD,2026-01-15,,"
HTMX = {"HX-Request": "true", "HX-Boosted": "true", "HX-Current-URL": "http://localhost/partner/"}


def post_files(client, *files, headers=None):
    data = {"files": [(io.BytesIO(content), name) for name, content in files]}
    return client.post("/partner/uploads", data=data, content_type="multipart/form-data", headers=headers)


@pytest.fixture
def partner_client(client, auth, partner):
    auth.login("partner@example.com")
    return client


def last_upload(app) -> Upload:
    with app.app_context():
        return db.session.scalars(select(Upload).order_by(Upload.id.desc())).first()


def upload_and_parse(app, client, name, content) -> int:
    assert post_files(client, (name, content)).status_code == 303
    drain(app)
    return last_upload(app).id


# --- the summary -----------------------------------------------------------------------------------


def made(status, **counts) -> Upload:
    values = dict(imported=0, accepted=0, duplicates=0, conflicts=0, rejected=0, quarantined=0)
    values.update(counts)
    return Upload(status=status, **values)


@pytest.mark.parametrize(
    "upload,label,tone",
    [
        (made(UploadStatus.RECEIVED), "Parsing…", "neutral"),
        (made(UploadStatus.PARSING), "Parsing…", "neutral"),
        (made(UploadStatus.IMPORTED, imported=12), "Imported 12", "success"),
        (
            made(UploadStatus.IMPORTED, imported=12, quarantined=3),
            "Imported 12, 3 held for unknown employees",
            "warning",
        ),
        (
            made(UploadStatus.IMPORTED, imported=0, quarantined=5),
            "Imported 0, 5 held for unknown employees",
            "warning",
        ),
        (
            made(UploadStatus.IMPORTED, imported=0, quarantined=1),
            "Imported 0, 1 held for an unknown employee",
            "warning",
        ),
        (
            made(UploadStatus.IMPORTED, imported=0, duplicates=4),
            "Imported 0, 4 duplicates skipped",
            "neutral",
        ),
        (
            made(UploadStatus.IMPORTED, imported=3, rejected=2),
            "Imported 3, 2 rows with problems not imported",
            "success",
        ),
        (made(UploadStatus.NEEDS_REVIEW, rejected=2), "Needs review: 2 rows rejected", "warning"),
        (
            made(UploadStatus.NEEDS_REVIEW, rejected=1, conflicts=1),
            "Needs review: 1 row rejected, 1 row in conflict",
            "warning",
        ),
        (
            made(UploadStatus.NEEDS_MAPPING),
            "Needs mapping: no saved mapping covers the columns",
            "warning",
        ),
        (
            Upload(status=UploadStatus.FAILED, message="The file is empty."),
            "Failed: The file is empty.",
            "danger",
        ),
        (made(UploadStatus.CANCELLED), "Cancelled: nothing imported", "neutral"),
        (Upload(status=UploadStatus.SUPERSEDED, superseded_by_id=7), "Superseded by upload #7", "neutral"),
    ],
)
def test_status_summary_says_what_happened(upload, label, tone):
    summary = status_summary(upload)
    assert (summary.label, summary.tone) == (label, tone)


def test_list_row_when_every_row_held_shows_warning_not_imported_green(app, partner_client):
    upload_and_parse(app, partner_client, "held.csv", csv_bytes(UNKNOWN))
    page = partner_client.get("/partner/").data.decode()
    assert "tone-warning" in page and "tone-success" not in page
    assert "Imported 0, 1 held for an unknown employee" in page


def test_detail_page_when_clean_shows_imported_count_in_badge(app, partner_client):
    upload_id = upload_and_parse(app, partner_client, "lines.csv", csv_bytes(ROW1, ROW2))
    page = partner_client.get(f"/partner/uploads/{upload_id}").data.decode()
    assert 'id="upload-status-badge"' in page and ">Imported 2</span>" in page


def test_status_fragment_when_failed_says_why(app, partner_client):
    upload_id = upload_and_parse(app, partner_client, "empty.csv", csv_bytes())
    fragment = partner_client.get(f"/partner/uploads/{upload_id}/status", headers=HTMX).data.decode()
    assert "Failed: The file has a header row but no line items." in fragment and "tone-danger" in fragment


# --- held rows -------------------------------------------------------------------------------------


def test_detail_page_lists_held_rows_with_reason_and_next_step_for_partner(app, partner_client):
    upload_id = upload_and_parse(app, partner_client, "lines.csv", csv_bytes(ROW1, UNKNOWN))
    page = partner_client.get(f"/partner/uploads/{upload_id}").data.decode()
    assert "Imported 1, 1 held for an unknown employee" in page
    held = page[page.index('id="held-rows"') :]
    assert '<th scope="row">3</th>' in held
    assert "E999" in held and "New Person" in held and "$100.00" in held
    assert "Employee E999 is not on ACME's employee roster" in held
    assert (
        "These rows wait for an administrator to add or map the employee; they are imported then, "
        "and you will see them here." in page
    )
    assert "/admin/quarantine" not in page


def test_detail_page_for_admin_links_held_rows_to_quarantine(app, client, auth, partner):
    auth.login("partner@example.com")
    upload_id = upload_and_parse(app, client, "lines.csv", csv_bytes(UNKNOWN))
    auth.logout()
    auth.login("admin@example.com")
    page = client.get(f"/admin/uploads/{upload_id}").data.decode()
    assert 'id="held-rows"' in page and "E999" in page
    assert '<a href="/admin/quarantine">quarantine page</a>' in page


def test_detail_page_when_many_held_rows_pages_them(app, partner_client, monkeypatch):
    monkeypatch.setattr(upload_views, "HELD_PAGE_SIZE", 2)
    rows = [f"E9{n},Someone,ACME,T-9{n},Tuition,10.00,USD,2026-01-15,," for n in range(3)]
    upload_id = upload_and_parse(app, partner_client, "lines.csv", csv_bytes(*rows))
    first = partner_client.get(f"/partner/uploads/{upload_id}").data.decode()
    assert "E90" in first and "E91" in first and "E92" not in first and "Page 1 of 2" in first
    second = partner_client.get(f"/partner/uploads/{upload_id}?held_page=2").data.decode()
    assert "E92" in second and "E90" not in second


def test_detail_page_when_held_rows_released_shows_them_imported(app, client, auth, partner):
    auth.login("partner@example.com")
    upload_id = upload_and_parse(app, client, "lines.csv", csv_bytes(UNKNOWN))
    auth.logout()
    auth.login("admin@example.com")
    with app.app_context():
        acme_id = db.session.scalar(select(Customer.id).where(Customer.code == "ACME"))
    client.post(
        "/admin/quarantine/release",
        data={"customer_id": acme_id, "external_id": "E999", "employee_id": "new", "name": "New Person"},
    )
    auth.logout()
    auth.login("partner@example.com")
    page = client.get(f"/partner/uploads/{upload_id}").data.decode()
    assert ">Imported 1</span>" in page and 'id="held-rows"' not in page


# --- supersession on the pages ---------------------------------------------------------------------


@pytest.fixture
def superseded(app, partner_client):
    """A needs-review upload, then the corrected file with the same name: (old id, new id)."""
    old = upload_and_parse(app, partner_client, "october.csv", csv_bytes(ROW1, BAD))
    new = upload_and_parse(app, partner_client, "October.csv", csv_bytes(ROW1, ROW2))
    return old, new


def test_superseded_upload_page_links_to_the_new_upload_and_offers_no_action(partner_client, superseded):
    old, new = superseded
    page = partner_client.get(f"/partner/uploads/{old}").data.decode()
    assert f'Superseded by <a href="/partner/uploads/{new}">upload #{new}</a>' in page
    assert "Import the" not in page and "Cancel this upload" not in page


def test_superseded_upload_in_list_no_longer_needs_review(partner_client, superseded):
    old, new = superseded
    page = partner_client.get("/partner/").data.decode()
    row = page[page.index(f'id="upload-row-{old}"') :]
    row = row[: row.index("</tr>")]
    assert f"upload #{new}" in row and "Needs review" not in row


def test_superseded_upload_audit_event_names_the_new_upload(app, superseded):
    old, new = superseded
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "upload.superseded"))
        assert (event.subject_type, event.subject_id) == ("Upload", str(old))
        assert event.details["superseded_by"] == new


def test_superseded_upload_import_is_refused_with_reason(app, partner_client, superseded):
    old, new = superseded
    response = partner_client.post(f"/partner/uploads/{old}/import", follow_redirects=True)
    assert f"upload #{old} was superseded by upload #{new}" in response.data.decode()
    with app.app_context():
        assert db.session.get(Upload, old).status == UploadStatus.SUPERSEDED


def test_superseded_upload_cancel_and_mapping_are_refused_with_reason(app, partner_client, superseded):
    old, new = superseded
    cancel = partner_client.post(f"/partner/uploads/{old}/cancel", follow_redirects=True).data.decode()
    assert f"upload #{old} was superseded by upload #{new}" in cancel
    mapping = partner_client.get(f"/partner/uploads/{old}/mapping", follow_redirects=True).data.decode()
    assert f"upload #{old} was superseded by upload #{new}" in mapping
    with app.app_context():
        assert db.session.get(Upload, old).status == UploadStatus.SUPERSEDED


# --- where the upload form leads -------------------------------------------------------------------


@pytest.mark.parametrize("headers", [None, HTMX], ids=["plain", "htmx"])
def test_upload_post_redirects_to_the_new_upload_page(app, partner_client, headers):
    response = post_files(partner_client, ("lines.csv", csv_bytes(ROW1)), headers=headers)
    upload_id = last_upload(app).id
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/partner/uploads/{upload_id}")
    page = partner_client.get(response.headers["Location"], headers=headers).data.decode()
    assert "Received lines.csv. Parsing has started." in page
    assert "Parsing…" in page and f'hx-get="/partner/uploads/{upload_id}/status"' in page


def test_upload_post_with_several_files_redirects_to_the_list(app, partner_client):
    response = post_files(partner_client, ("a.csv", csv_bytes(ROW1)), ("b.csv", csv_bytes(ROW2)))
    assert response.status_code == 303 and response.headers["Location"].endswith("/partner/")


@pytest.mark.parametrize("headers", [None, HTMX], ids=["plain", "htmx"])
def test_upload_post_when_duplicate_answers_409_with_reason_at_the_form(app, partner_client, headers):
    upload_and_parse(app, partner_client, "lines.csv", csv_bytes(ROW1))
    response = post_files(partner_client, ("copy.csv", csv_bytes(ROW1)), headers=headers)
    page = response.data.decode()
    assert response.status_code == 409
    assert 'id="upload-errors"' in page and "copy.csv is identical to upload #1" in page
    assert '<a href="/partner/uploads/1">Open upload #1</a>' in page
    assert response.headers["HX-Replace-Url"] == "/partner/"


def test_upload_post_without_file_answers_400_with_reason_at_the_form(partner_client):
    response = partner_client.post("/partner/uploads", data={}, headers=HTMX)
    page = response.data.decode()
    assert response.status_code == 400
    assert 'id="upload-errors"' in page and "Choose at least one file." in page


def test_upload_post_over_size_limit_with_csrf_on_answers_413_at_the_form(app, partner_client):
    # CSRF protection reads the form before the view runs, so the 413 comes from there.
    app.config.update(MAX_CONTENT_LENGTH=1024, WTF_CSRF_ENABLED=True)
    response = post_files(partner_client, ("big.csv", b"x" * 5000), headers=HTMX)
    page = response.data.decode()
    assert response.status_code == 413
    assert 'id="upload-errors"' in page and "The file is too large: the limit is 0 MB." in page
    assert 'name="files"' in page  # the form, to choose another file


def test_status_summary_when_parse_job_failed_for_good_says_parsing_stopped(app, partner_client):
    post_files(partner_client, ("stuck.csv", csv_bytes(ROW1)))
    with app.app_context():
        upload = db.session.scalars(select(Upload).order_by(Upload.id.desc())).first()
        record = db.session.get(JobRecord, upload.job_id)
        record.status, record.attempts = JobStatus.FAILED, 3  # the database was down on every attempt
        db.session.commit()
        summary = status_summary(upload)
    assert summary.tone == "danger"
    assert summary.label.startswith("Parsing stopped after 3 attempts")
    page = partner_client.get(f"/partner/uploads/{upload.id}").data.decode()
    assert "an administrator can try it again" in page
