"""Building invoices: which lines, how many invoices, totals, idempotence and concurrency."""

import datetime as dt
import json
import threading

import pytest
from sqlalchemy import func, select

from portal.core import audit
from portal.core.audit_chain import verify_chain
from portal.extensions import db
from portal.invoicing.build import build_due, due_customers, enqueue_due, run_period
from portal.models import (
    AuditEvent,
    Customer,
    Invoice,
    InvoiceLine,
    InvoiceRun,
    InvoiceTotal,
    JobRecord,
    LineItem,
)
from tests.factories import build


def invoices(app):
    with app.app_context():
        rows = db.session.scalars(select(Invoice).order_by(Invoice.id)).all()
        db.session.expunge_all()
        return rows


def test_build_attaches_period_lines_and_stores_totals(app, billing):
    billing.add(120000, "2026-10-03", employee="E1")
    billing.add(8999, "2026-10-20", employee="E2", expense_type="materials", partner="code-camp")
    result = build(app)
    (invoice,) = invoices(app)
    assert result["created"] == ["ACME-2026-10-1"] == [invoice.number]
    assert (invoice.total_minor, invoice.line_count, invoice.employee_count, invoice.partner_count) == (
        128999,
        2,
        2,
        2,
    )
    assert invoice.status == "pending_approval" and not invoice.is_credit_note


def test_build_stores_totals_per_employee_partner_and_type(app, billing):
    billing.add(100, "2026-10-03", employee="E1")
    billing.add(200, "2026-10-04", employee="E1", expense_type="fees")
    billing.add(300, "2026-10-05", employee="E2", partner="code-camp")
    build(app)
    with app.app_context():
        totals = {
            (t.dimension, t.label): (t.amount_minor, t.line_count)
            for t in db.session.scalars(select(InvoiceTotal))
        }
    assert totals[("employee", "Person 1 (E1)")] == (300, 2)
    assert totals[("employee", "Person 2 (E2)")] == (300, 1)
    assert totals[("partner", "State University")] == (300, 2)
    assert totals[("partner", "Code Camp")] == (300, 1)
    assert totals[("expense_type", "tuition")] == (400, 2) and totals[("expense_type", "fees")] == (200, 1)


def test_build_leaves_lines_after_period_for_later(app, billing):
    billing.add(100, "2026-10-31")
    later = billing.add(200, "2026-11-01")
    build(app)
    with app.app_context():
        assert db.session.get(LineItem, later).invoice_id is None


def test_build_when_no_lines_creates_nothing_and_says_so(app, billing):
    result = build(app)
    assert (
        result["created"] == [] and "no unbilled line items up to 2026-10-31: no invoice" in result["message"]
    )
    assert invoices(app) == []


def test_build_one_invoice_per_currency(app, billing):
    billing.add(100, "2026-10-03", currency="USD")
    billing.add(5000, "2026-10-03", currency="EUR")
    result = build(app)
    assert sorted(result["created"]) == ["ACME-2026-10-1", "ACME-2026-10-2"]
    assert {(i.currency, i.total_minor) for i in invoices(app)} == {("EUR", 5000), ("USD", 100)}


def test_build_net_negative_is_credit_note(app, billing):
    billing.add(10000, "2026-10-03")
    billing.add(-25000, "2026-10-04")
    build(app)
    (invoice,) = invoices(app)
    assert invoice.total_minor == -15000 and invoice.is_credit_note and invoice.kind_label == "Credit note"


def test_build_twice_creates_nothing_twice(app, billing):
    billing.add(100, "2026-10-03")
    build(app)
    second = build(app)
    assert second["created"] == [] and "no invoice" in second["message"]
    assert len(invoices(app)) == 1


def test_build_when_currency_invoiced_and_late_line_arrives_says_it_waits(app, billing):
    billing.add(100, "2026-10-03")
    build(app)
    billing.add(50, "2026-10-09")
    second = build(app)
    assert "USD already invoiced for 2026-10; later lines wait for the next period" in second["message"]
    assert len(invoices(app)) == 1


def test_late_line_goes_on_next_invoice_as_adjustment(app, billing):
    billing.add(100, "2026-10-03")
    build(app, period="2026-10")
    late = billing.add(50, "2026-10-30")  # arrives after October was invoiced
    billing.add(70, "2026-11-02")
    build(app, period="2026-10")  # October again: nothing new
    assert len(invoices(app)) == 1
    build(app, period="2026-11")
    november = invoices(app)[1]
    assert (november.total_minor, november.adjustment_minor, november.adjustment_count) == (120, 50, 1)
    with app.app_context():
        flag = db.session.scalar(select(InvoiceLine.is_adjustment).where(InvoiceLine.line_item_id == late))
    assert flag is True


def test_approved_invoice_never_changes_when_late_lines_arrive(app, billing):
    billing.add(100, "2026-10-03")
    build(app)
    billing.add(999, "2026-10-05")
    build(app)
    (invoice,) = invoices(app)
    assert (invoice.total_minor, invoice.line_count) == (100, 1)


def test_build_writes_generated_event_and_notification_job(app, billing):
    billing.add(100, "2026-10-03")
    build(app)
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "invoice.generated"))
        assert event.details["number"] == "ACME-2026-10-1" and event.details["total_minor"] == 100
        assert db.session.scalar(
            select(JobRecord.func).where(JobRecord.func.like("%notify_awaiting_approval"))
        )


def test_run_period_when_scheduled_twice_runs_once(app, billing):
    billing.add(100, "2026-10-03")
    assert build(app, force=False)["created"] == ["ACME-2026-10-1"]
    assert build(app, force=False)["message"] == "already run"


def test_due_customers_respects_timezone(app, billing):
    with app.app_context():
        # 1 Nov 03:00 UTC: a new month in London (GLOBEX), still 31 Oct in New York (ACME), where
        # October cannot be billed yet (only September, never run here).
        due = due_customers(now=dt.datetime(2026, 11, 1, 3, 0, tzinfo=dt.UTC))
        assert sorted((c.code, p.key) for c, p in due) == [("ACME", "2026-09"), ("GLOBEX", "2026-10")]


def test_due_customers_skips_period_already_run(app, billing):
    build(app, code="GLOBEX")
    with app.app_context():
        due = due_customers(now=dt.datetime(2026, 11, 2, 12, 0, tzinfo=dt.UTC))
        assert [c.code for c, _ in due] == ["ACME"]


def test_enqueue_due_records_build_jobs_covering_each_due_customer_once(app, billing):
    with app.app_context():
        assert enqueue_due(now=dt.datetime(2026, 11, 2, 12, 0, tzinfo=dt.UTC)) == 2
        records = db.session.scalars(select(JobRecord).where(JobRecord.queue == "invoices")).all()
        covered = [cid for record in records for cid in record.args[1]]
        codes = db.session.scalars(select(Customer.code).where(Customer.id.in_(covered))).all()
        assert len(covered) == 2 and sorted(codes) == ["ACME", "GLOBEX"]


def test_build_due_chunk_builds_every_customer_in_one_go(app, billing):
    billing.add(100, "2026-10-03")
    billing.add(200, "2026-10-04", currency="EUR")
    with app.app_context():
        ids = db.session.scalars(select(Customer.id).order_by(Customer.code)).all()
        results = build_due("2026-10", ids)
        assert [r["created"] for r in results] == [["ACME-2026-10-1", "ACME-2026-10-2"], []]
        assert db.session.scalar(select(func.count(InvoiceRun.id))) == 2
        assert db.session.scalar(select(func.count(InvoiceLine.id))) == 2
        generated = db.session.scalar(
            select(func.count(AuditEvent.id)).where(AuditEvent.action == "invoice.generated")
        )
        assert generated == 2


def test_build_due_chunk_keeps_audit_chain_valid(app, billing):
    billing.add(100, "2026-10-03")
    billing.add(300, "2026-10-05", customer="GLOBEX")
    with app.app_context():
        audit.record("test.before")  # an event pending in the session keeps its place
        ids = db.session.scalars(select(Customer.id).order_by(Customer.code)).all()
        build_due("2026-10", ids)
        ok, _, first_bad = verify_chain()
        assert ok and first_bad is None
        actions = db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)).all()
        assert actions[-5:] == [
            "test.before",
            "invoice.generated",
            "invoice.generated",
            "invoice.run",
            "invoice.run",
        ]


def test_cli_build_prints_created_invoice(app, billing, runner):
    billing.add(100, "2026-10-03")
    result = runner.invoke(args=["invoices", "build", "--customer", "ACME", "--period", "2026-10"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["created"] == ["ACME-2026-10-1"]


def test_cli_build_when_bad_period_explains(app, billing, runner):
    result = runner.invoke(args=["invoices", "build", "--customer", "ACME", "--period", "Oct"])
    assert "'Oct' is not a period; write it as YYYY-MM" in result.output


def test_cli_run_due_with_date_builds_due_customers(app, billing, runner):
    billing.add(100, "2026-10-03")
    result = runner.invoke(args=["invoices", "run-due", "--date", "2026-11-01"])
    out = json.loads(result.output)
    assert out["due"] == 2
    by_customer = {r["customer"]: r for r in out["runs"]}
    assert by_customer["ACME"]["created"] == ["ACME-2026-10-1"]
    assert "no invoice" in by_customer["GLOBEX"]["message"]
    again = json.loads(runner.invoke(args=["invoices", "run-due", "--date", "2026-11-02"]).output)
    assert again["due"] == 0


# SQLite serializes writers, so true concurrency is exercised on PostgreSQL.
@pytest.mark.parametrize("backend", ["postgresql"])
def test_concurrent_builds_create_one_invoice(app, billing, backend):
    """Four workers building the same customer and period at once (real threads, real database)."""
    for n in range(50):
        billing.add(100 + n, "2026-10-03")
    results, errors = [], []

    def worker():
        try:
            with app.app_context():
                customer_id = db.session.scalar(select(Customer.id).where(Customer.code == "ACME"))
                results.append(run_period(customer_id, "2026-10", force=True))
                db.session.remove()
        except Exception as exc:  # the test reports it below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sum(len(r["created"]) for r in results) == 1
    (invoice,) = invoices(app)
    assert invoice.line_count == 50
    with app.app_context():
        assert db.session.scalar(select(func.count(InvoiceRun.id))) == 1
        assert db.session.scalar(select(func.count(InvoiceLine.id))) == 50
