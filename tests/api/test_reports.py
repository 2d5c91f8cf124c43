"""Invoices over the API (portal/api/reports.py): reading, downloading, approving, denying and
disputing, per role and tenant, with the audit events the pages write."""

from __future__ import annotations

from sqlalchemy import select

from portal.extensions import db
from portal.invoicing import disputes
from portal.models import AuditEvent, Dispute, Invoice, InvoiceDocument, User
from tests.security.world import EMAILS

PROBLEM = "application/problem+json"


def ids(world, tenant="A"):
    return world.ids[tenant]


def events(world, action: str, number: str | None = None) -> list[AuditEvent]:
    with world.app.app_context():
        found = db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()
        return [e for e in found if number is None or number in (e.details or {}).values()]


def actor(world, event: AuditEvent) -> str | None:
    with world.app.app_context():
        user = db.session.get(User, event.actor_id) if event.actor_id else None
        return user.email if user else None


# --- reading ---------------------------------------------------------------------------------------


def test_list_as_contact_shows_only_its_customers_invoices(world, api):
    body = api(None, world.tokens["customer_a"]).get("/reports").get_json()
    assert {item["customer"] for item in body["items"]} == {"ACME"}
    assert ids(world)["number"] in [item["number"] for item in body["items"]]


def test_list_as_admin_filters_by_customer_status_period_currency(world, api):
    client = api(None, world.tokens["admin"])
    body = client.get(
        "/reports?customer=globex&status=pending_approval&period=2026-01&currency=USD"
    ).get_json()
    assert [item["number"] for item in body["items"]] == [ids(world, "B")["number"]]
    assert client.get("/reports?period=2025-12").get_json()["items"] == []


def test_list_as_contact_filtering_another_customer_finds_nothing(world, api):
    body = api(None, world.tokens["customer_a"]).get("/reports?customer=GLOBEX").get_json()
    assert body == {"items": [], "next_cursor": None}


def test_list_with_a_bad_period_is_a_422_problem_naming_the_field(world, api):
    response = api(None, world.tokens["admin"]).get("/reports?period=2026-13")
    assert (response.status_code, response.mimetype) == (422, PROBLEM)
    assert response.get_json()["errors"][0]["field"] == "period"


def test_list_pages_by_cursor_newest_first_without_repeats(world, api):
    client = api(None, world.tokens["admin"])
    first = client.get("/reports?limit=1").get_json()
    second = client.get(f"/reports?limit=1&cursor={first['next_cursor']}").get_json()
    numbers = [first["items"][0]["number"], second["items"][0]["number"]]
    assert numbers == [ids(world, "B")["number"], ids(world, "A")["number"]]
    assert second["next_cursor"] is None


def test_list_as_partner_is_403_and_without_token_401(world, api):
    assert api(None, world.tokens["partner_a"]).get("/reports").status_code == 403
    response = api(None, None).get("/reports")
    assert (response.status_code, response.mimetype) == (401, PROBLEM)


def test_report_has_totals_and_per_employee_breakdown(world, api):
    number = ids(world)["number"]
    body = api(None, world.tokens["customer_a"]).get(f"/reports/{number}").get_json()
    assert (body["number"], body["status"], body["customer"]) == (number, "pending_approval", "ACME")
    employees = body["totals"]["employee"]
    assert sum(t["amount_minor"] for t in employees) == body["total_minor"]
    assert body["total"] == "120.00" and body["currency"] == "USD"
    assert {t["label"] for t in employees} == {"P100 (E100)", "P101 (E101)"}
    assert [d["line_id"] for d in body["open_disputes"]] != []


def test_report_of_another_tenant_is_404(world, api):
    response = api(None, world.tokens["customer_a"]).get(f"/reports/{ids(world, 'B')['number']}")
    assert (response.status_code, response.mimetype) == (404, PROBLEM)


def test_report_lines_page_by_cursor_and_cover_every_line(world, api):
    client = api(None, world.tokens["admin"])
    number = ids(world)["number"]
    first = client.get(f"/reports/{number}/lines?limit=1").get_json()
    second = client.get(f"/reports/{number}/lines?limit=1&cursor={first['next_cursor']}").get_json()
    lines = first["items"] + second["items"]
    assert second["next_cursor"] is None
    assert sorted(line["amount"] for line in lines) == ["100.00", "20.00"]
    assert [line["disputed"] for line in lines] == [True, False]
    assert lines[1]["id"] == ids(world)["line_id"]


def test_report_lines_filter_by_expense_type(world, api):
    number = ids(world)["number"]
    body = (
        api(None, world.tokens["customer_a"])
        .get(f"/reports/{number}/lines?expense_type=materials")
        .get_json()
    )
    assert [line["expense_type"] for line in body["items"]] == ["materials"]


def test_download_serves_the_stored_pdf_and_records_it(world, api):
    number = ids(world)["number"]
    before = len(events(world, "invoice.downloaded"))
    response = api(None, world.tokens["customer_a"]).get(f"/reports/{number}/download?format=pdf")
    assert (response.status_code, response.mimetype, response.data) == (
        200,
        "application/pdf",
        b"%PDF-1.7 test",
    )
    assert "attachment" in response.headers["Content-Disposition"]
    assert len(events(world, "invoice.downloaded")) == before + 1


def test_download_csv_as_admin(world, api):
    number = ids(world, "B")["number"]
    response = api(None, world.tokens["admin"]).get(f"/reports/{number}/download?format=csv")
    assert (response.status_code, response.mimetype, response.data) == (200, "text/csv", b"a,b\n")


def test_download_in_an_unknown_format_is_422(world, api):
    response = api(None, world.tokens["admin"]).get(f"/reports/{ids(world)['number']}/download?format=xls")
    assert (response.status_code, response.mimetype) == (422, PROBLEM)


def test_download_before_documents_exist_is_404_saying_why(fresh_world, api):
    with fresh_world.app.app_context():
        db.session.query(InvoiceDocument).filter_by(kind="csv").delete()
        db.session.commit()
    number = ids(fresh_world)["number"]
    response = api(None, fresh_world.tokens["customer_a"]).get(f"/reports/{number}/download?format=csv")
    assert (response.status_code, response.mimetype) == (404, PROBLEM)
    assert "when it is approved" in response.get_json()["detail"]
    body = api(None, fresh_world.tokens["customer_a"]).get(f"/reports/{number}").get_json()
    assert body["documents"]["csv"] is None and body["documents"]["pdf"].endswith("format=pdf")


# --- decisions -------------------------------------------------------------------------------------


def _withdraw_disputes(world, tenant="A"):
    with world.app.app_context():
        for dispute in db.session.scalars(
            select(Dispute).where(Dispute.invoice_id == ids(world, tenant)["invoice_id"])
        ):
            disputes.withdraw(dispute, by=None)
        db.session.commit()


def test_approve_with_a_disputed_line_is_a_409_and_changes_nothing(world, api):
    number = ids(world)["number"]
    response = api(None, world.tokens["customer_a"]).post(f"/reports/{number}/approve", json={})
    assert (response.status_code, response.mimetype) == (409, PROBLEM)
    assert "disputed" in response.get_json()["detail"]
    with world.app.app_context():
        assert db.session.get(Invoice, ids(world)["invoice_id"]).status.value == "pending_approval"


def test_approve_by_contact_approves_and_audits_then_a_second_is_409(fresh_world, api):
    _withdraw_disputes(fresh_world)
    client = api(None, fresh_world.tokens["customer_a"])
    number = ids(fresh_world)["number"]
    response = client.post(f"/reports/{number}/approve", json={"comment": "OK from finance"})
    assert response.status_code == 200
    body = response.get_json()
    assert (body["status"], body["decided_by"], body["decision_comment"]) == (
        "approved",
        EMAILS["customer_a"],
        "OK from finance",
    )
    [event] = events(fresh_world, "invoice.approved", number)
    assert actor(fresh_world, event) == EMAILS["customer_a"]
    again = client.post(f"/reports/{number}/approve")  # no body: the comment is optional
    assert (again.status_code, again.mimetype) == (409, PROBLEM)
    assert f"approved by {EMAILS['customer_a']}" in again.get_json()["detail"]


def test_approve_replayed_with_the_same_idempotency_key_answers_the_first_200(fresh_world, api):
    _withdraw_disputes(fresh_world)
    client = api(None, fresh_world.tokens["customer_a"])
    number = ids(fresh_world)["number"]
    headers = {"Idempotency-Key": "approve-1"}
    first = client.post(f"/reports/{number}/approve", json={}, headers=headers)
    second = client.post(f"/reports/{number}/approve", json={}, headers=headers)
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.get_json() == first.get_json()
    assert len(events(fresh_world, "invoice.approved", number)) == 1
    other = client.post(f"/reports/{number}/approve", json={"comment": "x"}, headers=headers)
    assert (other.status_code, other.mimetype) == (422, PROBLEM)


def test_approve_by_admin_or_partner_is_403_and_other_tenant_404(world, api):
    number = ids(world)["number"]
    assert api(None, world.tokens["admin"]).post(f"/reports/{number}/approve", json={}).status_code == 403
    assert api(None, world.tokens["partner_a"]).post(f"/reports/{number}/approve", json={}).status_code == 403
    assert (
        api(None, world.tokens["customer_b"]).post(f"/reports/{number}/approve", json={}).status_code == 404
    )


def test_deny_without_a_reason_is_a_422_problem_naming_reason(world, api):
    client = api(None, world.tokens["customer_a"])
    number = ids(world)["number"]
    for body in ({}, {"reason": "   "}):
        response = client.post(f"/reports/{number}/deny", json=body)
        assert (response.status_code, response.mimetype) == (422, PROBLEM)
        assert [e["field"] for e in response.get_json()["errors"]] == ["reason"]
    with world.app.app_context():
        assert db.session.get(Invoice, ids(world)["invoice_id"]).status.value == "pending_approval"


def test_deny_with_a_reason_denies_and_audits_it(fresh_world, api):
    number = ids(fresh_world)["number"]
    client = api(None, fresh_world.tokens["customer_a"])
    response = client.post(f"/reports/{number}/deny", json={"reason": "Line billed twice"})
    assert response.status_code == 200
    assert (response.get_json()["status"], response.get_json()["deny_reason"]) == (
        "denied",
        "Line billed twice",
    )
    [event] = events(fresh_world, "invoice.denied", number)
    assert (actor(fresh_world, event), event.details["reason"]) == (EMAILS["customer_a"], "Line billed twice")
    assert client.post(f"/reports/{number}/deny", json={"reason": "again"}).status_code == 409


def test_dispute_a_line_flags_it_and_audits(fresh_world, api):
    number, line_id = ids(fresh_world)["number"], ids(fresh_world)["line_id"]
    client = api(None, fresh_world.tokens["customer_a"])
    response = client.post(f"/reports/{number}/lines/{line_id}/dispute", json={"comment": "Not our course"})
    assert response.status_code == 200
    assert response.get_json()["line_id"] == line_id
    [event] = [e for e in events(fresh_world, "dispute.raised") if e.details["line_item_id"] == line_id]
    assert (actor(fresh_world, event), event.details["comment"]) == (EMAILS["customer_a"], "Not our course")
    lines = client.get(f"/reports/{number}/lines").get_json()["items"]
    assert all(line["disputed"] for line in lines)


def test_dispute_without_comment_is_422_and_a_line_of_another_invoice_404(world, api):
    client = api(None, world.tokens["customer_a"])
    number = ids(world)["number"]
    assert client.post(f"/reports/{number}/lines/{ids(world)['line_id']}/dispute", json={}).status_code == 422
    response = client.post(
        f"/reports/{number}/lines/{ids(world, 'B')['line_id']}/dispute", json={"comment": "x"}
    )
    assert (response.status_code, response.mimetype) == (404, PROBLEM)


def test_dispute_after_a_decision_is_409(fresh_world, api):
    number, line_id = ids(fresh_world)["number"], ids(fresh_world)["line_id"]
    client = api(None, fresh_world.tokens["customer_a"])
    assert client.post(f"/reports/{number}/deny", json={"reason": "Wrong month"}).status_code == 200
    response = client.post(f"/reports/{number}/lines/{line_id}/dispute", json={"comment": "late"})
    assert (response.status_code, response.mimetype) == (409, PROBLEM)
