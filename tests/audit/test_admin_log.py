"""The admin audit log as people read it: filters by invoice number, file name and email; subjects
named as people name them; details as lists and before/after tables; the overview's activity feed."""

import csv
import datetime as dt
import io
import re

import pytest
from sqlalchemy import select

from portal import accounts
from portal.core import audit
from portal.extensions import db
from portal.invoicing import disputes
from portal.jobs.workers import drain
from portal.models import AuditEvent, Customer, Dispute, Invoice, Upload, User
from tests.factories import PASSWORD, build

ROW_LINK = re.compile(r'<tr>\s*<td[^>]*><a href="/admin/audit/(\d+)">')


def listed(client, query: str) -> set[int]:
    """Ids of the events the audit log lists for `query` (first page)."""
    response = client.get(f"/admin/audit?{query}")
    assert response.status_code == 200
    return {int(i) for i in ROW_LINK.findall(response.get_data(as_text=True))}


def actions_of(app, ids) -> set[str]:
    with app.app_context():
        return set(db.session.scalars(select(AuditEvent.action).where(AuditEvent.id.in_(ids))))


def user_named(email):
    return db.session.scalar(select(User).where(User.email == email))


@pytest.fixture
def history(app, client, auth, billing):
    """ACME-2026-10-1's whole life through the domain functions: generated, notified, viewed, a line
    disputed, the rest approved, rendered, archived (delivered), the disputed line rejected. Beside it
    ACME-2026-11-1, generated and notified, whose events must never show under the first."""
    billing.add(1000, "2026-10-03", employee="E1")
    disputed_line = billing.add(2000, "2026-10-04", employee="E2")
    build(app, period="2026-10")
    billing.add(3000, "2026-11-03", employee="E1")
    build(app, period="2026-11")
    drain(app)  # the "awaits your approval" mails
    with app.app_context():
        first = db.session.scalar(select(Invoice).where(Invoice.number == "ACME-2026-10-1"))
        second = db.session.scalar(select(Invoice).where(Invoice.number == "ACME-2026-11-1"))
        ids = {"first": first.id, "second": second.id}
    auth.login(email="contact@acme.example", password=PASSWORD)
    assert client.get(f"/customer/invoices/{ids['first']}").status_code == 200  # invoice.viewed
    auth.logout()
    with app.app_context():
        contact = user_named("contact@acme.example")
        invoice = db.session.get(Invoice, ids["first"])
        disputes.flag_line(invoice, disputed_line, by=contact, comment="Not enrolled")
        db.session.commit()
        disputes.approve_undisputed(db.session.get(Invoice, ids["first"]), by=contact)
        db.session.commit()
    drain(app)  # render, then deliver to the archive
    drain(app)
    with app.app_context():
        dispute = db.session.scalar(select(Dispute))
        disputes.reject(dispute, by=user_named("admin@example.com"), reason="Not ours to bill")
        db.session.commit()
    auth.login()
    return ids


FIRST_INVOICE_ACTIONS = {
    "invoice.generated",
    "invoice.notified",
    "invoice.viewed",
    "dispute.raised",
    "invoice.approved",
    "invoice.approved_undisputed",
    "invoice.rendered",
    "delivery.attempted",
    "delivery.succeeded",
    "invoice.delivered",
    "dispute.rejected",
}


def test_invoice_filter_when_number_given_lists_every_event_of_that_invoice(app, client, history):
    shown = listed(client, "invoice=ACME-2026-10-1")
    assert actions_of(app, shown) == FIRST_INVOICE_ACTIONS


def test_invoice_filter_when_number_given_leaves_out_other_invoices_events(app, client, history):
    with app.app_context():
        others = set(
            db.session.scalars(
                select(AuditEvent.id).where(
                    AuditEvent.subject_type == "Invoice", AuditEvent.subject_id == str(history["second"])
                )
            )
        )
    assert others  # ACME-2026-11-1 has events of its own
    assert not listed(client, "invoice=ACME-2026-10-1") & others
    assert listed(client, "invoice=ACME-2026-11-1") == others


def test_invoice_filter_when_supplemental_lists_the_rebill_recorded_on_its_parent(app, client, auth, billing):
    billing.add(1000, "2026-10-03", employee="E1")
    disputed_line = billing.add(2000, "2026-10-04", employee="E2")
    build(app, period="2026-10")
    with app.app_context():
        contact, admin = user_named("contact@acme.example"), user_named("admin@example.com")
        invoice = db.session.scalar(select(Invoice))
        disputes.flag_line(invoice, disputed_line, by=contact, comment="Wrong amount")
        db.session.commit()
        disputes.approve_undisputed(db.session.get(Invoice, invoice.id), by=contact)
        db.session.commit()
        supplemental = disputes.rebill(
            db.session.scalars(select(Dispute)).all(), by=admin, reason="corrected"
        )
        db.session.commit()
        assert supplemental.number == "ACME-2026-10-1-S1"
    auth.login()
    assert actions_of(app, listed(client, "invoice=ACME-2026-10-1-S1")) == {
        "invoice.generated",
        "dispute.rebilled",
    }
    assert "dispute.rebilled" in actions_of(app, listed(client, "invoice=ACME-2026-10-1"))


def test_verify_now_when_a_whole_invoice_history_recorded_says_intact(app, client, history):
    with app.app_context():
        total = db.session.scalar(select(db.func.count(AuditEvent.id)))
    html = client.post("/admin/audit/verify", follow_redirects=True).get_data(as_text=True)
    assert f"Intact: {total} events verified" in html


def test_invoice_filter_when_number_unknown_lists_nothing(client, history):
    html = client.get("/admin/audit?invoice=ACME-2099-01-1").get_data(as_text=True)
    assert "No audit events match." in html


def test_invoice_filter_when_combined_with_action_narrows_to_both(app, client, history):
    assert actions_of(app, listed(client, "invoice=ACME-2026-10-1&action=delivery.")) == {
        "delivery.attempted",
        "delivery.succeeded",
    }


def test_text_search_when_invoice_number_finds_all_its_events(app, client, history):
    assert actions_of(app, listed(client, "q=ACME-2026-10-1")) >= FIRST_INVOICE_ACTIONS


def test_invoice_filter_when_paged_keeps_the_filter_in_page_links(app, client, auth, tenants):
    with app.app_context():
        customer = db.session.scalar(select(Customer).where(Customer.code == "ACME"))
        invoice = Invoice(
            number="ACME-2026-10-1",
            customer_id=customer.id,
            period_start=dt.date(2026, 10, 1),
            period_end=dt.date(2026, 10, 31),
            currency="USD",
        )
        db.session.add(invoice)
        db.session.flush()
        for _ in range(55):
            audit.record("invoice.viewed", subject=invoice)
        audit.record("test.unrelated", customer_id=customer.id)
        db.session.commit()
    auth.login()
    html = client.get("/admin/audit?invoice=ACME-2026-10-1").get_data(as_text=True)
    older = re.search(r'href="([^"]*before=\d+[^"]*)"', html).group(1).replace("&amp;", "&")
    assert "invoice=ACME-2026-10-1" in older
    rest = client.get(older).get_data(as_text=True)
    assert len(ROW_LINK.findall(rest)) == 5 and "test.unrelated" not in rest


def _uploads(app, tenants, *names):
    with app.app_context():
        ids = []
        for name in names:
            upload = Upload(
                partner_id=tenants["partner"], filename=name, storage_key="k", sha256="0" * 64, size_bytes=1
            )
            db.session.add(upload)
            db.session.flush()
            audit.record("upload.received", subject=upload, details={"filename": name})
            audit.record("upload.failed", subject=upload, details={"message": "no header row"})
            ids.append(upload.id)
        db.session.commit()
        return ids


def test_upload_filter_when_file_name_given_lists_only_that_uploads_events(app, client, auth, tenants):
    fall, spring = _uploads(app, tenants, "fall-tuition.csv", "spring-tuition.csv")
    auth.login()
    shown = listed(client, "upload=Fall-Tuition.csv")
    with app.app_context():
        rows = db.session.execute(
            select(AuditEvent.subject_id, AuditEvent.action).where(AuditEvent.id.in_(shown))
        )
        assert sorted(rows) == [(str(fall), "upload.failed"), (str(fall), "upload.received")]


def test_upload_filter_when_part_of_a_name_lists_the_uploads_containing_it(app, client, auth, tenants):
    _uploads(app, tenants, "fall-tuition.csv", "spring-tuition.csv", "roster.xlsx")
    auth.login()
    assert len(listed(client, "upload=tuition")) == 4


def test_text_search_when_file_name_finds_its_upload_events(app, client, auth, tenants):
    (fall,) = _uploads(app, tenants, "fall-tuition.csv")
    auth.login()
    shown = listed(client, "q=fall-tuition.csv")
    assert actions_of(app, shown) == {"upload.received", "upload.failed"}


def _jane_logs_in_and_out(app, client):
    """jane@acme.example is created (an event about her), then logs in and out (events by her)."""
    with app.app_context():
        accounts.create_user(
            email="jane@acme.example", password=PASSWORD, role="customer", customer_code="ACME"
        )
        db.session.commit()
    client.post("/login", data={"email": "jane@acme.example", "password": PASSWORD})
    client.post("/logout")


def test_user_filter_when_email_given_lists_events_about_and_by_that_user(app, client, auth, tenants):
    _jane_logs_in_and_out(app, client)
    auth.login()
    shown = listed(client, "user=JANE@acme.example")
    assert actions_of(app, shown) == {"user.created", "auth.login", "auth.logout"}


def test_user_filter_when_email_unknown_lists_nothing(client, auth, tenants):
    auth.login()
    assert "No audit events match." in client.get("/admin/audit?user=nobody@acme.example").get_data(
        as_text=True
    )


def test_text_search_when_email_finds_events_about_that_user(app, client, auth, tenants):
    _jane_logs_in_and_out(app, client)
    auth.login()
    assert {"user.created", "auth.login", "auth.logout"} <= actions_of(
        app, listed(client, "q=jane@acme.example")
    )


def test_audit_page_filter_form_has_labelled_invoice_upload_and_user_inputs(client, auth, tenants):
    auth.login()
    html = client.get("/admin/audit?invoice=ACME-2026-10-1&upload=f.csv&user=a@b.example").get_data(
        as_text=True
    )
    assert '<label for="f-invoice">Invoice number</label>' in html
    assert '<label for="f-upload">Upload file name</label>' in html
    assert '<label for="f-user">User email</label>' in html
    assert 'id="f-invoice" name="invoice" value="ACME-2026-10-1"' in html
    assert 'id="f-upload" name="upload" value="f.csv"' in html
    assert 'id="f-user" name="user" type="email" value="a@b.example"' in html


def test_hide_reads_when_checked_leaves_out_views_but_log_lists_them_otherwise(app, client, history):
    assert "invoice.viewed" in actions_of(app, listed(client, "invoice=ACME-2026-10-1"))
    assert "invoice.viewed" not in actions_of(app, listed(client, "invoice=ACME-2026-10-1&hide_reads=1"))


# --- subjects and details -------------------------------------------------------------------------


def test_audit_page_when_subjects_known_shows_them_as_people_name_them(app, client, history):
    html = client.get("/admin/audit?customer=ACME").get_data(as_text=True)
    assert f'<a href="/admin/invoices/{history["first"]}">Invoice ACME-2026-10-1</a>' in html
    assert "Invoice 1<" not in html and "Invoice " + str(history["first"]) + " " not in html
    html = client.get("/admin/audit?action=user.created").get_data(as_text=True)
    with app.app_context():
        contact_id = user_named("contact@acme.example").id
    assert f'<a href="/admin/users/{contact_id}">contact@acme.example</a>' in html


def test_audit_page_when_subjects_are_tenants_and_uploads_labels_them(app, client, auth, tenants):
    (upload_id,) = _uploads(app, tenants, "fall-tuition.csv")
    auth.login()
    html = client.get("/admin/audit").get_data(as_text=True)
    assert f'<a href="/admin/uploads/{upload_id}">Upload #{upload_id} (fall-tuition.csv)</a>' in html
    assert f'<a href="/admin/customers/{tenants["customer"]}/edit">Customer ACME</a>' in html
    assert f'<a href="/admin/partners/{tenants["partner"]}/edit">Partner state-u</a>' in html


def test_audit_page_when_subject_deleted_shows_type_and_id_unlinked(app, client, auth, tenants):
    with app.app_context():
        audit.record("test.gone", subject_type="Invoice", subject_id=999)
        db.session.commit()
    auth.login()
    html = client.get("/admin/audit?action=test.gone").get_data(as_text=True)
    assert '<td class="audit-subject">Invoice 999</td>' in html


def test_audit_page_when_many_subjects_resolves_labels_in_one_query_per_type(app, client, auth, tenants):
    from sqlalchemy import event

    _uploads(app, tenants, *(f"file-{n}.csv" for n in range(20)))
    auth.login()
    statements = []
    with app.app_context():
        engine = db.engine
    listen = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listen)
    try:
        html = client.get("/admin/audit?subject_type=Upload").get_data(as_text=True)
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    assert "(file-19.csv)" in html and "(file-0.csv)" in html
    upload_lookups = [s for s in statements if "FROM uploads" in s]
    assert len(upload_lookups) == 1


def test_audit_page_when_details_given_lists_them_as_key_value(app, client, history):
    html = client.get("/admin/audit?action=dispute.raised").get_data(as_text=True)
    table = html.split('id="audit-events"')[1]
    assert '<span class="audit-key">comment:</span> Not enrolled' in table
    assert "{&#34;" not in table and '{"' not in table


def test_audit_page_when_details_have_before_after_shows_field_old_to_new(app, client, auth, tenants):
    with app.app_context():
        audit.record(
            "customer.updated",
            subject_type="Customer",
            subject_id=tenants["customer"],
            details={"before": {"name": "Acme"}, "after": {"name": "Acme Corp"}},
        )
        db.session.commit()
    auth.login()
    html = client.get("/admin/audit?action=customer.updated").get_data(as_text=True)
    assert '<span class="audit-key">name:</span> Acme → Acme Corp' in html


def test_audit_event_when_details_empty_shows_no_details_section(app, client, auth, tenants):
    with app.app_context():
        event = audit.record("test.empty")
        db.session.commit()
        event_id = event.id
    auth.login()
    html = client.get(f"/admin/audit/{event_id}").get_data(as_text=True)
    assert "<h2>Details</h2>" not in html and "{}" not in html


def test_audit_event_when_details_given_shows_a_readable_list_and_linked_subject(app, client, history):
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "dispute.rejected"))
    html = client.get(f"/admin/audit/{event.id}").get_data(as_text=True)
    assert f'<a href="/admin/invoices/{history["first"]}">Invoice ACME-2026-10-1</a>' in html
    assert "<dt>reason</dt><dd>Not ours to bill</dd>" in html
    assert "<dt>line item id</dt>" in html
    assert "Customer ACME</a>" in html


def test_audit_export_when_subjects_known_adds_a_subject_label_column(app, client, history):
    rows = list(
        csv.reader(io.StringIO(client.get("/admin/audit.csv?invoice=ACME-2026-10-1").get_data(as_text=True)))
    )
    header = rows[0]
    assert header[:11] == [
        "seq", "occurred_at", "actor", "action", "subject_type", "subject_id",
        "customer_id", "partner_id", "ip", "details", "hash",
    ]  # fmt: skip
    assert header[11] == "subject"
    labels = {row[11] for row in rows[1:]}
    assert "Invoice ACME-2026-10-1" in labels
    assert any(label.startswith("Delivery #") and "ACME-2026-10-1 (archive)" in label for label in labels)
    assert len(rows) - 1 == len(listed(client, "invoice=ACME-2026-10-1"))


# --- the admin overview's feed --------------------------------------------------------------------


def test_overview_feed_when_invoice_viewed_leaves_views_and_downloads_out(app, client, auth, tenants):
    with app.app_context():
        audit.record("customer.updated", subject_type="Customer", subject_id=tenants["customer"])
        for action in sorted(audit.READ_ONLY_ACTIONS):
            for _ in range(25):
                audit.record(action, subject_type="Invoice", subject_id=1)
        db.session.commit()
    auth.login()
    html = client.get("/admin/").get_data(as_text=True)
    feed = html.split("Latest activity")[1]
    assert "customer.updated" in feed
    assert not any(action in feed for action in audit.READ_ONLY_ACTIONS)
    assert "invoice.viewed" in client.get("/admin/audit").get_data(as_text=True)


def test_overview_feed_when_subject_known_links_it_by_name(app, client, auth, tenants):
    auth.login()
    html = client.get("/admin/").get_data(as_text=True)
    feed = html.split("Latest activity")[1]
    assert f'<a href="/admin/customers/{tenants["customer"]}/edit">Customer ACME</a>' in feed
    assert ">admin@example.com</a>" in feed


def test_readable_details_when_amount_in_minor_units_shows_money():
    from portal.admin.audit_query import readable_details

    details = readable_details({"total_minor": 102000, "currency": "USD", "lines": 2})
    assert ("total", "$1,020.00") in details.items
    assert ("lines", "2") in details.items
