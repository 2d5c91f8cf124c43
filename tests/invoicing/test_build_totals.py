"""Stored totals and numbering with several customers, currencies and revisions side by side."""

from sqlalchemy import func, select

from portal.extensions import db
from portal.invoicing import lifecycle
from portal.models import Invoice, InvoiceLine, InvoiceTotal, User
from tests.factories import build


def _invoice(app, number):
    with app.app_context():
        invoice = db.session.scalar(select(Invoice).where(Invoice.number == number))
        totals = {
            (t.dimension, t.label): (t.amount_minor, t.line_count)
            for t in db.session.scalars(select(InvoiceTotal).where(InvoiceTotal.invoice_id == invoice.id))
        }
        snapshot = dict(
            db.session.execute(
                select(InvoiceLine.line_item_id, InvoiceLine.is_adjustment).where(
                    InvoiceLine.invoice_id == invoice.id
                )
            ).all()
        )
        db.session.expunge(invoice)
        return invoice, totals, snapshot


def test_totals_and_snapshot_count_only_the_invoices_own_lines(app, billing):
    a1 = billing.add(1000, "2026-10-03", employee="E1")
    a2 = billing.add(-300, "2026-09-28", employee="E2", expense_type="fees", partner="code-camp")
    a3 = billing.add(5000, "2026-10-04", employee="E1", currency="EUR")
    g1 = billing.add(700, "2026-10-05", customer="GLOBEX", employee="E1")
    g2 = billing.add(900, "2026-09-30", customer="GLOBEX", employee="E3", partner="code-camp")
    assert build(app, "ACME")["created"] == ["ACME-2026-10-1", "ACME-2026-10-2"]
    assert build(app, "GLOBEX")["created"] == ["GLOBEX-2026-10-1"]

    eur, eur_totals, eur_lines = _invoice(app, "ACME-2026-10-1")
    usd, usd_totals, usd_lines = _invoice(app, "ACME-2026-10-2")
    globex, globex_totals, globex_lines = _invoice(app, "GLOBEX-2026-10-1")
    assert (eur.currency, eur.total_minor, eur.line_count, eur_lines) == ("EUR", 5000, 1, {a3: False})
    assert (usd.currency, usd.total_minor, usd.line_count, usd.adjustment_minor, usd.adjustment_count) == (
        "USD",
        700,
        2,
        -300,
        1,
    )
    assert (usd.employee_count, usd.partner_count, usd_lines) == (2, 2, {a1: False, a2: True})
    assert usd_totals == {
        ("employee", "Person 1 (E1)"): (1000, 1),
        ("employee", "Person 2 (E2)"): (-300, 1),
        ("partner", "State University"): (1000, 1),
        ("partner", "Code Camp"): (-300, 1),
        ("expense_type", "tuition"): (1000, 1),
        ("expense_type", "fees"): (-300, 1),
    }
    assert (globex.total_minor, globex.line_count, globex.adjustment_minor, globex.adjustment_count) == (
        1600,
        2,
        900,
        1,
    )
    assert (globex.employee_count, globex.partner_count, globex_lines) == (2, 2, {g1: False, g2: True})
    assert globex_totals[("expense_type", "tuition")] == (1600, 2)
    assert eur_totals == {
        ("employee", "Person 1 (E1)"): (5000, 1),
        ("partner", "State University"): (5000, 1),
        ("expense_type", "tuition"): (5000, 1),
    }


def test_new_currency_after_a_revision_takes_the_next_sequence_number(app, billing):
    billing.add(100, "2026-10-03", employee="E1")
    kept = billing.add(200, "2026-10-04", employee="E2")
    build(app)
    with app.app_context():
        invoice = db.session.scalar(select(Invoice).where(Invoice.number == "ACME-2026-10-1"))
        contact = db.session.scalar(select(User).where(User.email == "contact@acme.example"))
        admin = db.session.scalar(select(User).where(User.email == "admin@example.com"))
        lifecycle.deny(invoice, by=contact, reason="E1 is not ours")
        db.session.commit()
        first_line = db.session.scalar(
            select(InvoiceLine.line_item_id).where(
                InvoiceLine.invoice_id == invoice.id, InvoiceLine.line_item_id != kept
            )
        )
        lifecycle.resolve_denial(invoice, by=admin, unbill={first_line: ""}, reject={})
        db.session.commit()
    revision, totals, lines = _invoice(app, "ACME-2026-10-1-R2")
    assert (revision.total_minor, revision.line_count, lines) == (200, 1, {kept: False})
    assert totals[("employee", "Person 2 (E2)")] == (200, 1)

    billing.add(5000, "2026-10-09", currency="EUR")
    result = build(app)
    assert result["created"] == ["ACME-2026-10-2"]
    assert "USD already invoiced for 2026-10" in result["message"]
    with app.app_context():
        assert db.session.scalar(select(func.count(Invoice.id))) == 3
