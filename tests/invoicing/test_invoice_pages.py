"""Invoice pages: a customer's review and decision, an admin's list, generate now, void, resolve."""

import re

import pytest
from sqlalchemy import select

from portal.core import audit
from portal.extensions import db
from portal.jobs.workers import drain
from portal.models import Invoice, LineItem
from tests.factories import build, invoice_status, line_id_by_amount


def test_customer_landing_lists_invoice_awaiting_decision(client, auth, invoice_id):
    auth.login("contact@acme.example")
    page = client.get("/customer/").data.decode()
    assert "ACME-2026-10-1" in page and "$1,245.00" in page


def test_customer_invoice_page_shows_summary_breakdowns_and_sources(client, auth, invoice_id):
    auth.login("contact@acme.example")
    page = client.get(f"/customer/invoices/{invoice_id}").data.decode()
    assert "Invoice ACME-2026-10-1" in page
    assert "Person 1 (E1)" in page and "Code Camp" in page and "tutoring" in page
    assert "(prior period)" in page and "f.csv, row 2" in page
    assert "Approve $1,245.00" in page


@pytest.mark.parametrize("suffix,method", [("", "get"), ("/approve", "post"), ("/deny", "post")])
def test_other_customers_invoice_answers_404(client, auth, invoice_id, suffix, method):
    auth.login("globex@globex.example")
    response = getattr(client, method)(
        f"/customer/invoices/{invoice_id}{suffix}", data={"reason": "Other", "details": "x"}
    )
    assert response.status_code == 404


def test_customer_approves_from_page(app, client, auth, invoice_id):
    auth.login("contact@acme.example")
    page = client.post(
        f"/customer/invoices/{invoice_id}/approve", data={"comment": "ok"}, follow_redirects=True
    ).data.decode()
    assert "You approved invoice ACME-2026-10-1." in page
    assert invoice_status(app, invoice_id) == "approved"


def test_second_decision_from_page_is_told_who_decided(app, client, auth, invoice_id):
    auth.login("contact@acme.example")
    client.post(f"/customer/invoices/{invoice_id}/approve", data={})
    auth.logout()
    auth.login("second@acme.example")
    page = client.post(
        f"/customer/invoices/{invoice_id}/deny", data={"reason": "Line billed twice"}, follow_redirects=True
    )
    assert "It was approved by contact@acme.example" in page.data.decode()
    assert invoice_status(app, invoice_id) == "approved"


def test_deny_without_reason_explains(app, client, auth, invoice_id):
    auth.login("contact@acme.example")
    page = client.post(
        f"/customer/invoices/{invoice_id}/deny", data={"reason": ""}, follow_redirects=True
    ).data.decode()
    assert "Choose a reason." in page or "Not a valid choice" in page
    assert invoice_status(app, invoice_id) == "pending_approval"


def test_deny_other_without_details_explains(app, client, auth, invoice_id):
    auth.login("contact@acme.example")
    page = client.post(
        f"/customer/invoices/{invoice_id}/deny", data={"reason": "Other"}, follow_redirects=True
    ).data.decode()
    assert "Explain the reason when you choose Other." in page
    assert invoice_status(app, invoice_id) == "pending_approval"


def test_deny_with_reason_records_it(app, client, auth, invoice_id):
    auth.login("contact@acme.example")
    client.post(
        f"/customer/invoices/{invoice_id}/deny", data={"reason": "Line billed twice", "details": "E2 twice"}
    )
    with app.app_context():
        assert db.session.get(Invoice, invoice_id).deny_reason == "Line billed twice: E2 twice"


def test_admin_invoice_list_filters_by_status(client, auth, invoice_id):
    auth.login("admin@example.com")
    assert ">ACME-2026-10-1</a>" in client.get("/admin/invoices?status=pending_approval").data.decode()
    assert ">ACME-2026-10-1</a>" not in client.get("/admin/invoices?status=approved").data.decode()


def test_admin_generate_now_runs_build_job(app, client, auth, billing):
    billing.add(100, "2026-10-03")
    auth.login("admin@example.com")
    page = client.post(
        "/admin/invoices/generate", data={"customer": "ACME", "period": "2026-10"}, follow_redirects=True
    )
    assert "Invoice run for ACME 2026-10 queued" in page.data.decode()
    drain(app)
    page = client.get("/admin/invoices").data.decode()
    assert "ACME-2026-10-1" in page and "created ACME-2026-10-1" in page


def test_admin_runs_section_when_watched_run_finishes_tells_page_to_refresh(app, client, auth, billing):
    import re

    billing.add(100, "2026-10-03")
    auth.login("admin@example.com")
    page = client.post(
        "/admin/invoices/generate", data={"customer": "ACME", "period": "2026-10"}, follow_redirects=True
    ).data.decode()
    assert "waiting for a worker" in page
    watching = re.search(r"/admin/invoices/runs\?watching=([\w-]+)", page).group(1)
    before = client.get(f"/admin/invoices/runs?watching={watching}", headers={"HX-Request": "true"})
    assert "HX-Trigger" not in before.headers and 'hx-trigger="load delay:1s"' in before.data.decode()
    drain(app)
    after = client.get(f"/admin/invoices/runs?watching={watching}", headers={"HX-Request": "true"})
    assert after.headers["HX-Trigger"] == "invoices-changed"
    body = after.data.decode()
    assert "created ACME-2026-10-1" in body and "hx-trigger" not in body  # done: polling stops


def test_admin_generate_now_when_bad_period_explains(client, auth, billing):
    auth.login("admin@example.com")
    page = client.post("/admin/invoices/generate", data={"customer": "ACME", "period": "10/2026"})
    assert page.status_code == 400
    assert 'class="field-error">Write the period as YYYY-MM.</small>' in page.data.decode()


def test_admin_void_requires_reason_then_voids(app, client, auth, invoice_id):
    auth.login("admin@example.com")
    response = client.post(f"/admin/invoices/{invoice_id}/void", data={"reason": ""})
    assert response.status_code == 400
    assert 'class="field-error">A reason is required.</small>' in response.data.decode()
    client.post(f"/admin/invoices/{invoice_id}/void", data={"reason": "Duplicate run"})
    assert invoice_status(app, invoice_id) == "void"


def test_admin_resolves_denial_from_page(app, client, auth, invoice_id):
    auth.login("contact@acme.example")
    client.post(f"/customer/invoices/{invoice_id}/deny", data={"reason": "Line billed twice"})
    auth.logout()
    auth.login("admin@example.com")
    with app.app_context():
        e2_line = db.session.scalar(select(LineItem.id).where(LineItem.amount_minor == 4500))
    page = client.get(f"/admin/invoices/{invoice_id}").data.decode()
    assert "Resolve the denial" in page
    page = client.post(
        f"/admin/invoices/{invoice_id}/resolve",
        data={f"line-{e2_line}": "reject", f"reason-{e2_line}": "Not enrolled"},
        follow_redirects=True,
    ).data.decode()
    assert "Denial resolved: revision ACME-2026-10-1-R2 awaits the customer" in page
    with app.app_context():
        assert db.session.get(LineItem, e2_line).rejection_reason == "Not enrolled"


def test_customer_cannot_reach_admin_invoices(client, auth, invoice_id):
    auth.login("contact@acme.example")
    assert client.get(f"/admin/invoices/{invoice_id}").status_code == 403


def test_line_search_fragment_filters_by_employee(app, client, auth, invoice_id):
    auth.login("contact@acme.example")
    fragment = client.get(
        f"/customer/invoices/{invoice_id}/lines?q=person 2", headers={"HX-Request": "true"}
    ).data.decode()
    assert fragment.startswith('<section id="lines"')
    assert "Person 2" in fragment and "Person 1" not in fragment


def test_line_table_filters_by_expense_type_and_sorts(app, client, auth, invoice_id):
    auth.login("contact@acme.example")
    fragment = client.get(
        f"/customer/invoices/{invoice_id}/lines?type=tuition", headers={"HX-Request": "true"}
    ).data.decode()
    assert "$1,200.00" in fragment and "$45.00" not in fragment
    ordered = client.get(
        f"/customer/invoices/{invoice_id}/lines?sort=amount", headers={"HX-Request": "true"}
    ).data.decode()
    # Prior-period adjustments stay after the period's own lines, whatever the sort.
    assert ordered.index("$1,200.00") < ordered.index("$45.00")


def test_employee_breakdown_loads_lines_on_demand(app, client, auth, invoice_id):
    from portal.models import Employee

    auth.login("contact@acme.example")
    with app.app_context():
        employee_id = db.session.scalar(
            select(Employee.id).where(Employee.external_id == "E2", Employee.customer.has(code="ACME"))
        )
    fragment = client.get(f"/customer/invoices/{invoice_id}/employees/{employee_id}").data.decode()
    assert "$45.00" in fragment and "$1,200.00" not in fragment


def test_other_customer_cannot_load_lines_fragment(client, auth, invoice_id):
    auth.login("globex@globex.example")
    assert (
        client.get(f"/customer/invoices/{invoice_id}/lines", headers={"HX-Request": "true"}).status_code
        == 404
    )


def test_documents_before_rendering_answer_404(client, auth, invoice_id):
    auth.login("contact@acme.example")
    assert client.get(f"/customer/invoices/{invoice_id}/documents/pdf").status_code == 404


def test_dispute_from_page_then_approve_undisputed_and_admin_rebills(app, client, auth, invoice_id):
    auth.login("contact@acme.example")
    line = line_id_by_amount(app, 4500)
    fragment = client.post(
        f"/customer/invoices/{invoice_id}/lines/{line}/dispute",
        data={"comment": "Not enrolled"},
        headers={"HX-Request": "true"},
    ).data.decode()
    assert "Disputed: Not enrolled" in fragment
    page = client.get(f"/customer/invoices/{invoice_id}").data.decode()
    assert "Approve the undisputed lines" in page
    refused = client.post(
        f"/customer/invoices/{invoice_id}/approve", data={}, follow_redirects=True
    ).data.decode()
    assert "1 line(s) are disputed" in refused
    page = client.post(
        f"/customer/invoices/{invoice_id}/approve-undisputed", data={}, follow_redirects=True
    ).data.decode()
    assert "without 1 disputed line(s)" in page
    assert invoice_status(app, invoice_id) == "approved"
    auth.logout()
    auth.login("admin@example.com")
    queue = client.get("/admin/disputes").data.decode()
    assert "Not enrolled" in queue
    with app.app_context():
        from portal.models import Dispute

        dispute_id = db.session.scalar(select(Dispute.id))
    page = client.post(
        f"/admin/disputes/{dispute_id}/resolve",
        data={"action": "rebill", "reason": "ok"},
        follow_redirects=True,
    )
    assert "Re-billed on ACME-2026-10-1-S1" in page.data.decode()


def test_dispute_without_comment_explains(app, client, auth, invoice_id):
    auth.login("contact@acme.example")
    page = client.post(
        f"/customer/invoices/{invoice_id}/lines/{line_id_by_amount(app, 4500)}/dispute",
        data={"comment": ""},
        follow_redirects=True,
    )
    assert "a comment is required to dispute it" in page.data.decode()


def test_viewing_invoice_is_audited(app, client, auth, invoice_id):
    from portal.models import AuditEvent

    auth.login("contact@acme.example")
    client.get(f"/customer/invoices/{invoice_id}")
    with app.app_context():
        audit.absorb_views()  # a page view joins the chain with the next append
        assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "invoice.viewed")) is not None


def test_every_customer_invoice_route_answers_404_to_another_customer(app, client, auth, invoice_id):
    """Walk every customer route that takes an invoice id: another customer's invoice is a 404."""
    auth.login("globex@globex.example")
    rules = [
        r
        for r in app.url_map.iter_rules()
        if r.endpoint.startswith("customer.") and "invoice_id" in r.arguments
    ]
    assert len(rules) >= 8
    for rule in rules:
        path = rule.rule.replace("<int:invoice_id>", str(invoice_id))
        path = re.sub(r"<any\([^)]*\):[^>]+>", "pdf", path)
        path = re.sub(r"<(?:int:)?[^>]+>", "1", path)
        method = "GET" if "GET" in rule.methods else "POST"
        response = client.open(path, method=method, data={"comment": "x", "reason": "Other", "details": "x"})
        assert response.status_code == 404, (method, path, response.status_code)


def test_admin_reject_dispute_without_reason_explains_next_to_field(app, client, auth, invoice_id):
    from portal.models import Dispute

    auth.login("contact@acme.example")
    client.post(
        f"/customer/invoices/{invoice_id}/lines/{line_id_by_amount(app, 4500)}/dispute",
        data={"comment": "No"},
    )
    client.post(f"/customer/invoices/{invoice_id}/approve-undisputed", data={})
    auth.logout()
    auth.login("admin@example.com")
    with app.app_context():
        dispute_id = db.session.scalar(select(Dispute.id))
    response = client.post(f"/admin/disputes/{dispute_id}/resolve", data={"action": "reject", "reason": ""})
    assert response.status_code == 400
    assert (
        'class="field-error">A reason is required to reject a line back to the partner.'
        in response.data.decode()
    )


def test_dispute_queue_when_invoice_pending_offers_no_resolution(app, client, auth, invoice_id):
    auth.login("contact@acme.example")
    line = line_id_by_amount(app, 4500)
    client.post(f"/customer/invoices/{invoice_id}/lines/{line}/dispute", data={"comment": "Not enrolled"})
    auth.logout()
    auth.login("admin@example.com")
    queue = client.get("/admin/disputes").data.decode()
    assert "Not enrolled" in queue and "still awaits the customer's decision" in queue
    assert "Re-bill on a supplemental invoice" not in queue


def test_employee_breakdown_beyond_shown_lines_says_how_many(app, client, auth, billing, monkeypatch):
    from portal.models import Employee
    from portal.web import invoices as invoice_views

    for day in (3, 4, 5):
        billing.add(100 * day, f"2026-10-0{day}", employee="E3")
    build(app)
    monkeypatch.setattr(invoice_views, "EMPLOYEE_LINES_SHOWN", 2)
    with app.app_context():
        invoice_id = db.session.scalar(select(Invoice.id))
        employee_id = db.session.scalar(
            select(Employee.id).where(Employee.external_id == "E3", Employee.customer.has(code="ACME"))
        )
    auth.login("contact@acme.example")
    fragment = client.get(f"/customer/invoices/{invoice_id}/employees/{employee_id}").data.decode()
    assert "The first 2 of this employee's 3 lines" in fragment


def test_invoice_page_with_many_employees_shows_ten_subtotals_and_the_rest_on_request(
    app, client, auth, billing
):
    from portal.models import Customer, Employee

    with app.app_context():
        acme = db.session.scalar(select(Customer.id).where(Customer.code == "ACME"))
        db.session.add_all(
            Employee(customer_id=acme, external_id=f"M{n:02d}", name=f"Many {n:02d}") for n in range(12)
        )
        db.session.commit()
    for n in range(12):
        billing.add(1000 + n, "2026-10-05", employee=f"M{n:02d}")
    build(app)
    with app.app_context():
        invoice_id = db.session.scalar(select(Invoice.id))
    auth.login("contact@acme.example")
    page = client.get(f"/customer/invoices/{invoice_id}").get_data(as_text=True)
    breakdown = page.split('id="totals"', 1)[1].split("</section>", 1)[0]
    per_employee = breakdown.split("Per partner", 1)[0]
    assert per_employee.count("hx-get=") == 10
    assert "Show all 12 employees" in breakdown
    everyone = client.get(f"/customer/invoices/{invoice_id}?employees=all").get_data(as_text=True)
    assert everyone.split('id="totals"', 1)[1].split("Per partner", 1)[0].count("hx-get=") == 12
    assert "Show all" not in everyone.split('id="totals"', 1)[1].split("</section>", 1)[0]


HTMX = {"HX-Request": "true"}


def test_lines_fragment_when_asked_again_unchanged_answers_304(client, auth, invoice_id):
    auth.login("contact@acme.example")
    first = client.get(f"/customer/invoices/{invoice_id}/lines?sort=amount", headers=HTMX)
    assert first.status_code == 200 and first.headers["ETag"]
    again = client.get(
        f"/customer/invoices/{invoice_id}/lines?sort=amount",
        headers={**HTMX, "If-None-Match": first.headers["ETag"]},
    )
    assert again.status_code == 304
    assert again.data == b""
    assert again.headers["ETag"] == first.headers["ETag"]


def test_lines_fragment_when_other_view_asked_answers_200(client, auth, invoice_id):
    auth.login("contact@acme.example")
    first = client.get(f"/customer/invoices/{invoice_id}/lines?sort=amount", headers=HTMX)
    other = client.get(
        f"/customer/invoices/{invoice_id}/lines?sort=date",
        headers={**HTMX, "If-None-Match": first.headers["ETag"]},
    )
    assert other.status_code == 200
    assert other.headers["ETag"] != first.headers["ETag"]


def test_lines_fragment_when_line_disputed_since_answers_200_showing_it(app, client, auth, invoice_id):
    auth.login("contact@acme.example")
    first = client.get(f"/customer/invoices/{invoice_id}/lines", headers=HTMX)
    client.post(
        f"/customer/invoices/{invoice_id}/lines/{line_id_by_amount(app, 4500)}/dispute",
        data={"comment": "Not enrolled"},
        headers=HTMX,
    )
    again = client.get(
        f"/customer/invoices/{invoice_id}/lines", headers={**HTMX, "If-None-Match": first.headers["ETag"]}
    )
    assert again.status_code == 200
    assert "Disputed: Not enrolled" in again.data.decode()


def test_lines_fragment_when_invoice_approved_since_answers_200(app, client, auth, invoice_id):
    auth.login("contact@acme.example")
    first = client.get(f"/customer/invoices/{invoice_id}/lines", headers=HTMX)
    client.post(f"/customer/invoices/{invoice_id}/approve", data={})
    assert invoice_status(app, invoice_id) == "approved"
    again = client.get(
        f"/customer/invoices/{invoice_id}/lines", headers={**HTMX, "If-None-Match": first.headers["ETag"]}
    )
    assert again.status_code == 200


def test_lines_fragment_when_another_user_sends_the_etag_answers_200(client, auth, invoice_id):
    auth.login("contact@acme.example")
    first = client.get(f"/customer/invoices/{invoice_id}/lines", headers=HTMX)
    auth.logout()
    auth.login("admin@example.com")
    again = client.get(
        f"/admin/invoices/{invoice_id}/lines", headers={**HTMX, "If-None-Match": first.headers["ETag"]}
    )
    assert again.status_code == 200
