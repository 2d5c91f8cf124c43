"""The admin audit pages, the CSV export, and the customer and partner trails."""

import csv
import io

import pytest
from sqlalchemy import select

from portal.core import audit
from portal.extensions import db
from portal.models import AuditEvent, Invoice, Upload
from tests.factories import PASSWORD, build


def _record(app, action, n=1, **kwargs):
    with app.app_context():
        for _ in range(n):
            audit.record(action, **kwargs)
        db.session.commit()


def test_audit_page_when_filtered_by_action_lists_only_that_action(client, auth, tenants, app):
    _record(app, "invoice.approved", subject_type="Invoice", subject_id=7, customer_id=tenants["customer"])
    auth.login()
    page = client.get("/admin/audit?action=invoice.").get_data(as_text=True)
    assert "invoice.approved" in page
    assert "partner.created" not in page


def test_audit_page_when_filtered_by_customer_lists_only_its_events(client, auth, tenants, app):
    _record(app, "test.acme", customer_id=tenants["customer"])
    _record(app, "test.globex", customer_id=tenants["customer2"])
    auth.login()
    page = client.get("/admin/audit?customer=acme").get_data(as_text=True)
    assert "test.acme" in page
    assert "test.globex" not in page


def test_audit_page_when_text_search_matches_details_lists_event(client, auth, tenants, app):
    _record(app, "test.note", details={"note": "Needle in a haystack"})
    auth.login()
    page = client.get("/admin/audit?q=needle").get_data(as_text=True)
    assert "test.note" in page and "partner.created" not in page


def test_audit_page_when_more_than_a_page_links_older_and_newer(client, auth, tenants, app):
    _record(app, "test.bulk", n=60)
    auth.login()
    first = client.get("/admin/audit")
    with app.app_context():
        total = db.session.scalar(select(db.func.count(AuditEvent.id)))
    html = first.get_data(as_text=True)
    assert html.count("<tr>") - 1 == 50
    assert f"before={total - 49}" in html and "Newer" not in html
    second = client.get(f"/admin/audit?before={total - 49}").get_data(as_text=True)
    assert second.count("<tr>") - 1 == total - 50
    assert f"after={total - 50}" in second
    back = client.get(f"/admin/audit?after={total - 50}").get_data(as_text=True)
    assert back.count("<tr>") - 1 == 50


def test_audit_event_when_details_have_before_after_shows_changed_keys(client, auth, tenants, app):
    _record(
        app,
        "customer.updated",
        details={
            "before": {"name": "Acme", "timezone": "UTC"},
            "after": {"name": "Acme Corp", "timezone": "UTC"},
        },
    )
    with app.app_context():
        event_id = db.session.scalar(select(AuditEvent.id).where(AuditEvent.action == "customer.updated"))
    auth.login()
    html = client.get(f"/admin/audit/{event_id}").get_data(as_text=True)
    table = html.split("What changed")[1].split("Details")[0]
    assert '<th scope="row">name</th><td>Acme</td><td>Acme Corp</td>' in table
    assert "timezone" not in table


def test_audit_export_when_filtered_streams_csv_with_neutralized_formulas(client, auth, tenants, app):
    _record(app, "test.export", actor_label='=HYPERLINK("http://evil")', details={"x": 1})
    auth.login()
    response = client.get("/admin/audit.csv?action=test.")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][:4] == ["seq", "occurred_at", "actor", "action"]
    assert len(rows) == 2
    assert rows[1][2] == '\'=HYPERLINK("http://evil")'
    assert rows[1][9] == '{"x": 1}'


def test_audit_verify_now_when_chain_intact_shows_status(client, auth, tenants, app):
    auth.login()
    assert "Not verified yet" in client.get("/admin/audit").get_data(as_text=True)
    response = client.post("/admin/audit/verify", follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "Intact:" in html and "events verified" in html


@pytest.mark.parametrize("email", ["customer@example.com", "partner@example.com"])
@pytest.mark.parametrize("path", ["/admin/audit", "/admin/audit/1", "/admin/audit.csv"])
def test_audit_pages_when_not_admin_refuse(client, auth, tenants, email, path):
    auth.login(email=email)
    assert client.get(path).status_code == 403


def test_audit_verify_when_not_admin_refuses(client, auth, tenants):
    auth.login(email="customer@example.com")
    assert client.post("/admin/audit/verify").status_code == 403


def test_invoice_trail_when_own_invoice_lists_events_in_plain_words(app, client, auth, billing):
    billing.add(1000, "2026-10-03")
    billing.add(2000, "2026-10-03", customer="GLOBEX")
    build(app)
    build(app, "GLOBEX")
    with app.app_context():
        own, other = db.session.execute(select(Invoice.id).order_by(Invoice.id)).scalars().all()
    auth.login(email="contact@acme.example", password=PASSWORD)
    client.get(f"/customer/invoices/{own}")  # records invoice.viewed
    html = client.get(f"/customer/invoices/{own}/trail").get_data(as_text=True)
    assert "Invoice generated" in html and "Invoice viewed" in html
    assert client.get(f"/customer/invoices/{other}/trail").status_code == 404


def _upload(app, partner_id):
    with app.app_context():
        upload = Upload(
            partner_id=partner_id, filename="f.csv", storage_key="k", sha256="0" * 64, size_bytes=1
        )
        db.session.add(upload)
        db.session.flush()
        audit.record("upload.received", subject=upload)
        db.session.commit()
        return upload.id


def test_upload_trail_when_own_upload_lists_events_and_other_is_404(client, auth, tenants, app):
    own = _upload(app, tenants["partner"])
    other = _upload(app, tenants["partner2"])
    auth.login(email="partner@example.com")
    html = client.get(f"/partner/uploads/{own}/trail").get_data(as_text=True)
    assert "File uploaded" in html
    assert client.get(f"/partner/uploads/{other}/trail").status_code == 404
