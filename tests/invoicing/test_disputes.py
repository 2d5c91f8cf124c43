"""Line disputes: flag, approve the undisputed lines, and the admin's re-bill or reject."""

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.invoicing import disputes
from portal.invoicing.lifecycle import InvoiceStateError, approve
from portal.models import AuditEvent, Dispute, Invoice, InvoiceLine, LineItem, User
from tests.invoicing.test_build import build


@pytest.fixture
def setup(app, billing):
    ids = {
        "e1": billing.add(100, "2026-10-03", employee="E1"),
        "e2": billing.add(200, "2026-10-04", employee="E2"),
        "e3": billing.add(300, "2026-10-05", employee="E3"),
    }
    build(app)
    with app.app_context():
        ids["invoice"] = db.session.scalar(select(Invoice.id))
    return ids


def flag(app, setup, key, comment="Not enrolled"):
    with app.app_context():
        by = db.session.scalar(select(User).where(User.email == "contact@acme.example"))
        dispute = disputes.flag_line(
            db.session.get(Invoice, setup["invoice"]), setup[key], by=by, comment=comment
        )
        db.session.commit()
        return dispute.id


def approve_rest(app, setup):
    with app.app_context():
        by = db.session.scalar(select(User).where(User.email == "contact@acme.example"))
        held = disputes.approve_undisputed(db.session.get(Invoice, setup["invoice"]), by=by)
        db.session.commit()
        return held


def test_flag_requires_comment(app, setup):
    with pytest.raises(InvoiceStateError, match="a comment is required"):
        flag(app, setup, "e1", comment=" ")


def test_flag_line_not_on_invoice_refused(app, setup, billing):
    other = billing.add(5, "2026-11-01")
    setup = {**setup, "other": other}
    with pytest.raises(InvoiceStateError, match=f"Line {other} is not on invoice ACME-2026-10-1"):
        flag(app, setup, "other")


def test_approve_undisputed_approves_rest_and_holds_flagged_line(app, setup):
    flag(app, setup, "e3")
    assert approve_rest(app, setup) == [setup["e3"]]
    with app.app_context():
        invoice = db.session.get(Invoice, setup["invoice"])
        assert (invoice.status.value, invoice.total_minor, invoice.line_count) == ("approved", 300, 2)
        assert db.session.get(LineItem, setup["e3"]).invoice_id is None
        assert (
            db.session.scalar(
                select(db.func.count(InvoiceLine.id)).where(InvoiceLine.invoice_id == invoice.id)
            )
            == 2
        )


def test_held_line_is_not_taken_by_next_build(app, setup):
    flag(app, setup, "e3")
    approve_rest(app, setup)
    build(app, period="2026-11")
    with app.app_context():
        assert db.session.get(LineItem, setup["e3"]).invoice_id is None


def test_approve_undisputed_without_flags_refused(app, setup):
    with pytest.raises(InvoiceStateError, match="No line is disputed"):
        approve_rest(app, setup)


def test_approve_undisputed_when_every_line_flagged_refused(app, setup):
    for key in ("e1", "e2", "e3"):
        flag(app, setup, key)
    with pytest.raises(InvoiceStateError, match="Every line is disputed"):
        approve_rest(app, setup)


def test_flag_after_decision_refused(app, setup):
    with app.app_context():
        approve(db.session.get(Invoice, setup["invoice"]), by=None)
        db.session.commit()
    with pytest.raises(InvoiceStateError, match="only before a decision"):
        flag(app, setup, "e1")


def test_rebill_puts_line_on_supplemental_invoice_awaiting_approval(app, setup):
    dispute_id = flag(app, setup, "e3")
    approve_rest(app, setup)
    with app.app_context():
        admin = db.session.scalar(select(User).where(User.email == "admin@example.com"))
        supplemental = disputes.rebill(
            [db.session.get(Dispute, dispute_id)], by=admin, reason="Confirmed enrolled"
        )
        db.session.commit()
        assert (supplemental.number, supplemental.status.value, supplemental.total_minor) == (
            "ACME-2026-10-1-S1",
            "pending_approval",
            300,
        )
        assert supplemental.kind_label == "Supplemental invoice"
        assert db.session.get(LineItem, setup["e3"]).invoice_id == supplemental.id
        assert db.session.get(Dispute, dispute_id).status.value == "rebilled"


def test_reject_dispute_rejects_line_back_to_partner(app, setup):
    dispute_id = flag(app, setup, "e3")
    approve_rest(app, setup)
    with app.app_context():
        admin = db.session.scalar(select(User).where(User.email == "admin@example.com"))
        disputes.reject(db.session.get(Dispute, dispute_id), by=admin, reason="Not our employee")
        db.session.commit()
        line = db.session.get(LineItem, setup["e3"])
        assert (line.invoice_id, line.rejection_reason) == (None, "Not our employee")
        actions = db.session.scalars(select(AuditEvent.action)).all()
        assert {"dispute.raised", "invoice.approved_undisputed", "dispute.rejected"} <= set(actions)


def test_reject_dispute_without_reason_refused(app, setup):
    dispute_id = flag(app, setup, "e3")
    approve_rest(app, setup)
    with app.app_context(), pytest.raises(InvoiceStateError, match="A reason is required"):
        disputes.reject(db.session.get(Dispute, dispute_id), by=None, reason="")
