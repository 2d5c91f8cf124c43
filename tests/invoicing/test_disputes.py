"""Line disputes: flag, approve the undisputed lines, and the admin's re-bill or reject."""

import threading
import time

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.invoicing import disputes
from portal.invoicing.lifecycle import InvoiceStateError, approve
from portal.models import AuditEvent, Dispute, Invoice, InvoiceLine, LineItem, User
from tests.factories import build


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


def admin_user():
    return db.session.scalar(select(User).where(User.email == "admin@example.com"))


def resolve(app, dispute_id, action, reason="Checked with the partner"):
    with app.app_context():
        dispute = db.session.get(Dispute, dispute_id)
        if action == "rebill":
            supplemental_id = disputes.rebill([dispute], by=admin_user(), reason=reason).id
        else:
            supplemental_id = disputes.reject(dispute, by=admin_user(), reason=reason)
        db.session.commit()
        return supplemental_id


@pytest.mark.parametrize("action", ["rebill", "reject"])
def test_resolve_dispute_when_invoice_pending_refused_and_flag_kept(app, setup, action):
    dispute_id = flag(app, setup, "e3")
    with pytest.raises(InvoiceStateError, match="still awaits the customer's decision"):
        resolve(app, dispute_id, action)
    with app.app_context():
        line = db.session.get(LineItem, setup["e3"])
        assert (line.invoice_id, line.rejected_at) == (setup["invoice"], None)
        assert db.session.get(Dispute, dispute_id).status.value == "open"


def test_approve_whole_invoice_with_open_flag_refused(app, setup):
    flag(app, setup, "e2")
    with app.app_context(), pytest.raises(InvoiceStateError, match="1 line\\(s\\) are disputed"):
        approve(db.session.get(Invoice, setup["invoice"]), by=None)
    with app.app_context():
        assert db.session.get(Invoice, setup["invoice"]).status.value == "pending_approval"


def test_rebill_twice_refused_without_second_supplemental(app, setup):
    dispute_id = flag(app, setup, "e3")
    approve_rest(app, setup)
    resolve(app, dispute_id, "rebill")
    with pytest.raises(InvoiceStateError, match="resolved already"):
        resolve(app, dispute_id, "rebill")
    with app.app_context():
        numbers = db.session.scalars(select(Invoice.number).order_by(Invoice.id)).all()
        assert numbers == ["ACME-2026-10-1", "ACME-2026-10-1-S1"]


def test_reject_after_rebill_refused_and_line_stays_billed(app, setup):
    dispute_id = flag(app, setup, "e3")
    approve_rest(app, setup)
    supplemental_id = resolve(app, dispute_id, "rebill")
    with pytest.raises(InvoiceStateError, match="resolved already"):
        resolve(app, dispute_id, "reject")
    with app.app_context():
        line = db.session.get(LineItem, setup["e3"])
        assert (line.invoice_id, line.rejected_at) == (supplemental_id, None)
        assert db.session.get(Dispute, dispute_id).status.value == "rebilled"


def test_reflag_line_after_rejection_refused(app, setup, billing):
    dispute_id = flag(app, setup, "e3")
    approve_rest(app, setup)
    resolve(app, dispute_id, "reject")
    with pytest.raises(InvoiceStateError, match="approved; lines can be disputed only before"):
        flag(app, setup, "e3")


def test_supplemental_invoice_denied_and_resolved_gets_supplemental_revision(app, setup):
    from portal.invoicing import lifecycle

    flag(app, setup, "e3")
    approve_rest(app, setup)
    with app.app_context():
        dispute_id = db.session.scalar(select(Dispute.id))
    supplemental_id = resolve(app, dispute_id, "rebill")
    with app.app_context():
        lifecycle.deny(db.session.get(Invoice, supplemental_id), by=None, reason="Still wrong")
        db.session.commit()
        revision = lifecycle.resolve_denial(db.session.get(Invoice, supplemental_id), by=admin_user())
        db.session.commit()
        assert (revision.number, revision.supplement, revision.revision, revision.status.value) == (
            "ACME-2026-10-1-S1-R2",
            1,
            2,
            "pending_approval",
        )
        assert revision.kind_label == "Supplemental invoice"
        assert db.session.get(LineItem, setup["e3"]).invoice_id == revision.id


def test_void_with_open_flags_lists_them_in_audit_event(app, setup):
    from portal.invoicing import lifecycle

    flag(app, setup, "e1")
    with app.app_context():
        lifecycle.void(db.session.get(Invoice, setup["invoice"]), by=admin_user(), reason="Wrong period")
        db.session.commit()
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "invoice.voided"))
        assert event.details["closed_disputes"] == [setup["e1"]]


def _in_thread(app, work, results):
    def run():
        with app.app_context():
            try:
                work()
                db.session.commit()
                results.append("won")
            except InvoiceStateError as exc:
                db.session.rollback()
                results.append(f"told: {exc}")
            finally:
                db.session.remove()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_approve_while_line_being_flagged_waits_and_refuses(app, setup):
    """A flag raised (not yet committed) when a second contact approves: the approval waits for the
    flag's transaction and then refuses, so the approved invoice can never bill a disputed line."""
    results = []
    with app.app_context():
        contact = db.session.scalar(select(User).where(User.email == "contact@acme.example"))
        disputes.flag_line(db.session.get(Invoice, setup["invoice"]), setup["e2"], by=contact, comment="No")

        def approve_it():
            approve(db.session.get(Invoice, setup["invoice"]), by=None)

        thread = _in_thread(app, approve_it, results)
        time.sleep(0.5)  # the approval is now waiting for the flag's lock
        assert results == []
        db.session.commit()
    thread.join(30)
    assert len(results) == 1 and "are disputed" in results[0]
    with app.app_context():
        assert db.session.get(Invoice, setup["invoice"]).status.value == "pending_approval"


def test_flag_while_invoice_being_approved_waits_and_refuses(app, setup):
    results = []
    with app.app_context():
        approve(db.session.get(Invoice, setup["invoice"]), by=None)

        def flag_it():
            disputes.flag_line(db.session.get(Invoice, setup["invoice"]), setup["e2"], by=None, comment="No")

        thread = _in_thread(app, flag_it, results)
        time.sleep(0.5)
        assert results == []
        db.session.commit()
    thread.join(30)
    assert len(results) == 1 and "only before a decision" in results[0]
    with app.app_context():
        assert db.session.scalar(select(db.func.count(Dispute.id))) == 0


@pytest.mark.parametrize("backend", ["postgresql"])
def test_concurrent_rebill_and_reject_exactly_one_wins(app, setup, backend):
    dispute_id = flag(app, setup, "e3")
    approve_rest(app, setup)
    results, barrier = [], threading.Barrier(2)

    def attempt(action):
        def work():
            dispute = db.session.get(Dispute, dispute_id)
            barrier.wait()
            if action == "rebill":
                disputes.rebill([dispute], by=None, reason="ok")
            else:
                disputes.reject(dispute, by=None, reason="no")

        return work

    threads = [_in_thread(app, attempt(a), results) for a in ("rebill", "reject")]
    for thread in threads:
        thread.join(30)
    assert sorted(r.split(":")[0] for r in results) == ["told", "won"]
    with app.app_context():
        line = db.session.get(LineItem, setup["e3"])
        dispute = db.session.get(Dispute, dispute_id)
        if dispute.status.value == "rebilled":
            assert line.invoice_id == dispute.supplemental_invoice_id and line.rejected_at is None
        else:
            assert line.invoice_id is None and line.rejected_at is not None
        assert db.session.scalar(select(db.func.count(Invoice.id))) == (
            2 if dispute.status.value == "rebilled" else 1
        )
