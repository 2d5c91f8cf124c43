"""The upload pages through the test client: a partner's flow and an admin's view of it."""

import io
import json
import re

import pytest
from sqlalchemy import select

from portal import accounts
from portal.extensions import db
from portal.jobs.workers import drain
from portal.models import AuditEvent, Customer, LineItem, Upload
from tests.factories import PASSWORD
from tests.samples import PROFILE, ROW1, ROW2, csv_bytes

BAD = "E103,Di,ACME,T-4,Tuition,abc,USD,2026-01-15,,"


def post_files(client, *files, url="/partner/uploads"):
    data = {"files": [(io.BytesIO(content), name) for name, content in files]}
    return client.post(url, data=data, content_type="multipart/form-data", follow_redirects=True)


@pytest.fixture
def partner_client(client, auth, partner):
    auth.login("partner@example.com")
    return client


def _upload(app, n=-1):
    with app.app_context():
        return db.session.scalars(select(Upload).order_by(Upload.id)).all()[n]


def test_upload_page_shows_form_and_empty_history(partner_client):
    page = partner_client.get("/partner/").data.decode()
    assert 'type="file"' in page and "multiple" in page
    assert "No uploads yet." in page


def test_upload_clean_file_is_received_then_imported(app, partner_client):
    page = post_files(partner_client, ("lines.csv", csv_bytes(ROW1, ROW2))).data.decode()
    assert "Received lines.csv. Parsing has started." in page
    drain(app)
    upload = _upload(app)
    detail = partner_client.get(f"/partner/uploads/{upload.id}").data.decode()
    assert "Imported" in detail and upload.imported == 2


def test_upload_several_files_at_once_each_recorded(app, partner_client):
    post_files(partner_client, ("a.csv", csv_bytes(ROW1)), ("b.csv", csv_bytes(ROW2)))
    drain(app)
    with app.app_context():
        assert db.session.scalar(select(db.func.count(LineItem.id))) == 2


def test_upload_identical_file_refused_with_reason(app, partner_client):
    post_files(partner_client, ("lines.csv", csv_bytes(ROW1)))
    page = post_files(partner_client, ("copy.csv", csv_bytes(ROW1))).data.decode()
    assert "copy.csv is identical to upload #1 (lines.csv" in page


def test_upload_without_file_explains(partner_client):
    page = partner_client.post("/partner/uploads", data={}, follow_redirects=True).data.decode()
    assert "Choose at least one file." in page


def test_upload_over_size_limit_answers_413_with_limit(app, partner_client):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    response = partner_client.post(
        "/partner/uploads",
        data={"files": [(io.BytesIO(b"x" * 5000), "big.csv")]},
        content_type="multipart/form-data",
    )
    assert response.status_code == 413
    assert b"The file is too large: the limit is 0 MB." in response.data or b"too large" in response.data


def test_needs_review_shows_problems_and_decision(app, partner_client):
    post_files(partner_client, ("lines.csv", csv_bytes(ROW1, BAD)))
    drain(app)
    upload = _upload(app)
    page = partner_client.get(f"/partner/uploads/{upload.id}").data.decode()
    assert "Import the 1 valid rows" in page
    assert "<code>abc</code>" in page and "amount" in page


def test_import_valid_rows_from_page(app, partner_client):
    post_files(partner_client, ("lines.csv", csv_bytes(ROW1, BAD)))
    drain(app)
    upload = _upload(app)
    page = partner_client.post(f"/partner/uploads/{upload.id}/import", follow_redirects=True).data.decode()
    assert "Imported 1 line items from lines.csv." in page
    with app.app_context():
        assert db.session.scalar(select(LineItem.partner_reference)) == "T-1"


def test_cancel_from_page_imports_nothing(app, partner_client):
    post_files(partner_client, ("lines.csv", csv_bytes(ROW1, BAD)))
    drain(app)
    upload = _upload(app)
    page = partner_client.post(f"/partner/uploads/{upload.id}/cancel", follow_redirects=True).data.decode()
    assert "Cancelled lines.csv. Nothing from it was imported." in page
    with app.app_context():
        assert db.session.scalar(select(LineItem)) is None


def test_cancel_with_reason_shows_it_in_the_upload_history(app, partner_client):
    post_files(partner_client, ("lines.csv", csv_bytes(ROW1, BAD)))
    drain(app)
    upload = _upload(app)
    assert 'name="reason"' in partner_client.get(f"/partner/uploads/{upload.id}").data.decode()
    partner_client.post(f"/partner/uploads/{upload.id}/cancel", data={"reason": "  wrong month  "})
    trail = partner_client.get(f"/partner/uploads/{upload.id}/trail").data.decode()
    assert "Upload cancelled: wrong month" in trail


def test_cancel_with_too_long_reason_explains_and_cancels_nothing(app, partner_client):
    post_files(partner_client, ("lines.csv", csv_bytes(ROW1, BAD)))
    drain(app)
    upload = _upload(app)
    page = partner_client.post(
        f"/partner/uploads/{upload.id}/cancel", data={"reason": "x" * 501}, follow_redirects=True
    ).data.decode()
    assert "the reason has 501 characters; at most 500" in page
    assert _upload(app).status.value == "needs_review"


def test_error_file_download(app, partner_client):
    post_files(partner_client, ("lines.csv", csv_bytes(ROW1, BAD)))
    drain(app)
    response = partner_client.get(f"/partner/uploads/{_upload(app).id}/errors.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    lines = response.data.decode().splitlines()
    assert lines[0].endswith(",error") and lines[1].startswith("3,E103,")


def test_original_download_is_byte_identical(app, partner_client):
    data = csv_bytes(ROW1)
    post_files(partner_client, ("lines.csv", data))
    response = partner_client.get(f"/partner/uploads/{_upload(app).id}/original")
    assert response.data == data
    assert 'filename="lines.csv"' in response.headers["Content-Disposition"]


def test_other_partners_upload_answers_404(app, client, auth, partner):
    with app.app_context():
        accounts.create_partner(slug="other-u", name="Other")
        accounts.create_user(
            email="other@example.com", password=PASSWORD, role="partner", partner_slug="other-u"
        )
        db.session.commit()
    auth.login("partner@example.com")
    post_files(client, ("lines.csv", csv_bytes(ROW1)))
    upload_id = _upload(app).id
    auth.logout()
    auth.login("other@example.com")
    for path in ("", "/status", "/original", "/errors.csv", "/mapping"):
        assert client.get(f"/partner/uploads/{upload_id}{path}").status_code == 404, path
    assert client.post(f"/partner/uploads/{upload_id}/cancel").status_code == 404
    assert b"lines.csv" not in client.get("/partner/").data


def test_status_fragment_when_parsing_polls_itself(app, partner_client):
    post_files(partner_client, ("lines.csv", csv_bytes(ROW1)))
    upload_id = _upload(app).id
    fragment = partner_client.get(
        f"/partner/uploads/{upload_id}/status", headers={"HX-Request": "true"}
    ).data.decode()
    assert 'hx-trigger="load delay:1s"' in fragment and "waiting for a worker" in fragment
    assert "Parsing…" in fragment


def test_status_fragment_when_parsing_ended_updates_the_rest_of_the_page(app, partner_client):
    post_files(partner_client, ("lines.csv", csv_bytes(ROW1, BAD)))
    upload_id = _upload(app).id
    drain(app)
    response = partner_client.get(f"/partner/uploads/{upload_id}/status", headers={"HX-Request": "true"})
    fragment = response.data.decode()
    assert "HX-Refresh" not in response.headers
    assert "hx-trigger" not in fragment  # polling stops
    assert "Needs review: 1 row rejected" in fragment
    # The counts, problem rows and actions come out of band, replacing the page's stale sections.
    assert '<div id="upload-result" hx-swap-oob="true">' in fragment
    assert "Import the 1 valid rows" in fragment and "<code>abc</code>" in fragment
    assert 'id="upload-meta" hx-swap-oob="true"' in fragment and "mapping “default” v1" in fragment


def test_list_row_fragment_polls_until_done(app, partner_client):
    post_files(partner_client, ("lines.csv", csv_bytes(ROW1)))
    upload_id = _upload(app).id
    assert "hx-trigger" in partner_client.get(f"/partner/uploads/{upload_id}/status?from=list").data.decode()
    drain(app)
    row = partner_client.get(f"/partner/uploads/{upload_id}/status?from=list").data.decode()
    assert "hx-trigger" not in row and "Imported" in row


UNMAPPED = (
    b"Student,Cost,When,Ref,Kind,Company\n"
    b"E100,10.00,2026-01-01,R1,Tuition,ACME\n"
    b"E101,x,2026-01-02,R2,Tuition,ACME\n"
)


def _mapping_form(**overrides):
    data = {
        "name": "registrar",
        "col_employee_external_id": "Student",
        "col_amount": "Cost",
        "col_service_date": "When",
        "col_partner_reference": "Ref",
        "col_expense_type": "Kind",
        "col_customer_code": "Company",
        "decimal_separator": ".",
        "default_currency": "USD",
    }
    data.update(overrides)
    return data


def test_needs_mapping_page_proposes_columns(app, partner_client):
    post_files(partner_client, ("odd.csv", UNMAPPED))
    drain(app)
    upload_id = _upload(app).id
    assert b"Map the columns" in partner_client.get(f"/partner/uploads/{upload_id}").data
    page = partner_client.get(f"/partner/uploads/{upload_id}/mapping").data.decode()
    assert '<option selected value="Ref">' in page or 'value="Ref" selected' in page
    # "Student", "When" and "Kind" match no known header name: the page says what is still missing.
    assert "the profile identifies no employee: map &#39;employee_external_id&#39;" in page


def test_mapping_preview_shows_normalized_rows_and_problems(app, partner_client):
    post_files(partner_client, ("odd.csv", UNMAPPED))
    drain(app)
    upload_id = _upload(app).id
    preview = partner_client.post(
        f"/partner/uploads/{upload_id}/mapping/preview", data=_mapping_form()
    ).data.decode()
    assert "$10.00" in preview
    assert "amount" in preview and "“x”" in preview


def test_mapping_preview_when_required_field_unmapped_explains(app, partner_client):
    post_files(partner_client, ("odd.csv", UNMAPPED))
    drain(app)
    upload_id = _upload(app).id
    preview = partner_client.post(
        f"/partner/uploads/{upload_id}/mapping/preview", data=_mapping_form(col_partner_reference="")
    ).data.decode()
    assert "required field &#39;partner_reference&#39; is not mapped" in preview


def test_mapping_save_reparses_upload_with_new_profile(app, partner_client):
    post_files(partner_client, ("odd.csv", UNMAPPED))
    drain(app)
    upload_id = _upload(app).id
    page = partner_client.post(
        f"/partner/uploads/{upload_id}/mapping", data=_mapping_form(), follow_redirects=True
    )
    assert b"Mapping saved." in page.data
    drain(app)
    upload = _upload(app)
    assert upload.status.value == "needs_review" and upload.accepted == 1 and upload.rejected == 1
    with app.app_context():
        assert (
            db.session.scalar(
                select(AuditEvent).where(AuditEvent.action == "mapping.saved").order_by(AuditEvent.id.desc())
            ).details["name"]
            == "registrar"
        )


def test_mappings_page_lists_and_exports_profile(app, partner_client):
    assert b"default" in partner_client.get("/partner/mappings").data
    response = partner_client.get("/partner/mappings/default.json")
    assert json.loads(response.data) == PROFILE


def test_mappings_import_when_invalid_lists_problems(app, partner_client):
    bad = json.dumps({**PROFILE, "columns": {}}).encode()
    page = partner_client.post(
        "/partner/mappings/import",
        data={"file": (io.BytesIO(bad), "p.json"), "name": "default"},
        content_type="multipart/form-data",
        follow_redirects=True,
    ).data.decode()
    assert "The mapping profile is not valid" in page and "required field" in page


def test_mappings_import_saves_new_version(app, partner_client):
    page = partner_client.post(
        "/partner/mappings/import",
        data={"file": (io.BytesIO(json.dumps(PROFILE).encode()), "p.json"), "name": "default"},
        content_type="multipart/form-data",
        follow_redirects=True,
    ).data.decode()
    assert "Saved profile &#39;default&#39; version 2." in page


def test_admin_sees_every_partners_uploads(app, client, auth, partner):
    auth.login("partner@example.com")
    post_files(client, ("lines.csv", csv_bytes(ROW1)))
    auth.logout()
    auth.login("admin@example.com")
    page = client.get("/admin/uploads").data.decode()
    assert "lines.csv" in page and "State University" in page
    assert client.get(f"/admin/uploads/{_upload(app).id}").status_code == 200


def test_admin_quarantine_release_creates_employee_and_imports(app, client, auth, partner):
    auth.login("partner@example.com")
    post_files(client, ("lines.csv", csv_bytes("E999,New Person,ACME,T-9,Tuition,100.00,USD,2026-01-15,,")))
    drain(app)
    auth.logout()
    auth.login("admin@example.com")
    page = client.get("/admin/quarantine").data.decode()
    assert "E999" in page and "$100.00" in page
    with app.app_context():
        acme_id = db.session.scalar(select(Customer.id).where(Customer.code == "ACME"))
    page = client.post(
        "/admin/quarantine/release",
        data={"customer_id": acme_id, "external_id": "E999", "employee_id": "new", "name": "New Person"},
        follow_redirects=True,
    ).data.decode()
    assert "Released 1 row(s) of E999 (ACME) as New Person." in page
    with app.app_context():
        assert db.session.scalar(select(LineItem.partner_reference)) == "T-9"


def test_partner_cannot_see_quarantine(partner_client):
    assert partner_client.get("/admin/quarantine").status_code == 403


def test_mapping_for_new_layout_proposes_its_own_profile_name(app, partner_client):
    post_files(partner_client, ("odd layout.csv", UNMAPPED))
    drain(app)
    page = partner_client.get(f"/partner/uploads/{_upload(app).id}/mapping").data.decode()
    assert re.search(r"<input[^>]*name=\"name\"[^>]*value=\"odd-layout\"", page), re.findall(
        r"<input[^>]*name=\"name\"[^>]*>", page
    )


def test_admin_manages_a_partners_mapping_profiles(app, client, auth, partner):
    auth.login("admin@example.com")
    page = client.get(f"/admin/partners/{partner}/mappings").data.decode()
    assert "Mapping profiles of State University" in page and "default" in page
    assert json.loads(client.get(f"/admin/partners/{partner}/mappings/default.json").data) == PROFILE
    page = client.post(
        f"/admin/partners/{partner}/mappings/import",
        data={"file": (io.BytesIO(json.dumps(PROFILE).encode()), "p.json"), "name": "default"},
        content_type="multipart/form-data",
        follow_redirects=True,
    ).data.decode()
    assert "Saved profile &#39;default&#39; version 2." in page


def test_partner_cannot_reach_admin_mapping_pages(partner_client, partner):
    assert partner_client.get(f"/admin/partners/{partner}/mappings").status_code == 403
