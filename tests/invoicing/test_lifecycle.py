"""Every legal and illegal invoice transition, the denial resolution, and concurrent decisions."""

import threading

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.invoicing import lifecycle
from portal.invoicing.lifecycle import InvoiceStateError
from portal.models import AuditEvent, Invoice, InvoiceLine, InvoiceTotal, LineItem, User
from tests.factories import build


@pytest.fixture
def invoice_id(app, billing):
    billing.add(100, "2026-10-03", employee="E1")
    billing.add(200, "2026-10-04", employee="E2")
    billing.add(300, "2026-10-05", employee="E3")
    build(app)
    with app.app_context():
        return db.session.scalar(select(Invoice.id))


def act(app, fn, invoice_id, *, user="contact@acme.example", **kwargs):
    with app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        by = db.session.scalar(select(User).where(User.email == user))
        result = fn(invoice, by=by, **kwargs)
        db.session.commit()
        return result


def status(app, invoice_id):
    with app.app_context():
        return db.session.get(Invoice, invoice_id).status.value


def actions(app):
    with app.app_context():
        return [e.action for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def test_approve_when_pending_is_approved_with_audit(app, invoice_id):
    act(app, lifecycle.approve, invoice_id, comment="Looks right")
    assert status(app, invoice_id) == "approved"
    assert "invoice.approved" in actions(app)


def test_deliver_when_approved_is_delivered(app, invoice_id):
    act(app, lifecycle.approve, invoice_id)
    act(app, lifecycle.mark_delivered, invoice_id, user="admin@example.com")
    assert status(app, invoice_id) == "delivered"


def test_deny_when_pending_records_reason(app, invoice_id):
    act(app, lifecycle.deny, invoice_id, reason="Person 3 left the company")
    with app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        assert (invoice.status.value, invoice.deny_reason) == ("denied", "Person 3 left the company")


def test_deny_without_reason_is_refused(app, invoice_id):
    with pytest.raises(InvoiceStateError, match="A reason is required to deny"):
        act(app, lifecycle.deny, invoice_id, reason="  ")
    assert status(app, invoice_id) == "pending_approval"


@pytest.mark.parametrize(
    "setup,transition,kwargs",
    [
        ([], lifecycle.mark_delivered, {}),
        ([(lifecycle.approve, {})], lifecycle.approve, {}),
        ([(lifecycle.approve, {})], lifecycle.deny, {"reason": "late"}),
        ([(lifecycle.deny, {"reason": "x"})], lifecycle.approve, {}),
        ([(lifecycle.approve, {}), (lifecycle.mark_delivered, {})], lifecycle.void, {"reason": "x"}),
        ([(lifecycle.void, {"reason": "x"})], lifecycle.approve, {}),
        ([], lifecycle.resolve_denial, {}),
    ],
)
def test_illegal_transition_raises_clear_error(app, invoice_id, setup, transition, kwargs):
    for fn, fn_kwargs in setup:
        act(app, fn, invoice_id, **fn_kwargs)
    before = status(app, invoice_id)
    with pytest.raises(InvoiceStateError, match=r"Invoice ACME-2026-10-1 is .*; it cannot be"):
        act(app, transition, invoice_id, **kwargs)
    assert status(app, invoice_id) == before


def test_second_decision_is_told_who_decided_first(app, invoice_id):
    act(app, lifecycle.approve, invoice_id, user="second@acme.example")
    with pytest.raises(InvoiceStateError, match="approved by second@acme.example at"):
        act(app, lifecycle.deny, invoice_id, reason="no")


def test_void_returns_lines_to_unbilled(app, invoice_id):
    act(app, lifecycle.void, invoice_id, user="admin@example.com", reason="Wrong customer")
    with app.app_context():
        assert db.session.scalars(select(LineItem.invoice_id)).all() == [None, None, None]
    assert status(app, invoice_id) == "void"


def _line(app, employee):
    with app.app_context():
        return db.session.scalar(
            select(LineItem.id).join(LineItem.employee).where(LineItem.employee.has(external_id=employee))
        )


def test_resolve_denial_issues_new_revision_and_keeps_history(app, invoice_id):
    act(app, lifecycle.deny, invoice_id, reason="E3 is not ours")
    e2, e3 = _line(app, "E2"), _line(app, "E3")
    revision = act(
        app,
        lifecycle.resolve_denial,
        invoice_id,
        user="admin@example.com",
        unbill={e2: ""},
        reject={e3: "Not enrolled"},
    )
    with app.app_context():
        old = db.session.get(Invoice, invoice_id)
        new = db.session.scalar(select(Invoice).where(Invoice.supersedes_id == invoice_id))
        assert (new.number, new.revision, new.status.value, new.total_minor) == (
            "ACME-2026-10-1-R2",
            2,
            "pending_approval",
            100,
        )
        assert (old.status.value, old.total_minor, old.resolved_at is not None) == ("denied", 600, True)
        assert (
            db.session.scalar(
                select(db.func.count()).select_from(InvoiceLine).where(InvoiceLine.invoice_id == invoice_id)
            )
            == 3
        )
        assert db.session.get(LineItem, e2).invoice_id is None
        rejected = db.session.get(LineItem, e3)
        assert (rejected.invoice_id, rejected.rejection_reason) == (None, "Not enrolled")
        assert {
            t.label
            for t in db.session.scalars(
                select(InvoiceTotal).where(
                    InvoiceTotal.invoice_id == new.id, InvoiceTotal.dimension == "employee"
                )
            )
        } == {"Person 1 (E1)"}
    assert revision is not None


def test_rejected_line_is_never_billed_again(app, invoice_id):
    act(app, lifecycle.deny, invoice_id, reason="x")
    act(
        app,
        lifecycle.resolve_denial,
        invoice_id,
        user="admin@example.com",
        reject={_line(app, "E3"): "Not enrolled"},
    )
    build(app, period="2026-11")
    with app.app_context():
        assert db.session.get(LineItem, _line(app, "E3")).invoice_id is None


def test_unbilled_line_returns_on_next_invoice(app, invoice_id):
    act(app, lifecycle.deny, invoice_id, reason="x")
    e2 = _line(app, "E2")
    act(app, lifecycle.resolve_denial, invoice_id, user="admin@example.com", unbill={e2: ""})
    build(app, period="2026-11")
    with app.app_context():
        november = db.session.scalar(select(Invoice).where(Invoice.number == "ACME-2026-11-1"))
        assert november.adjustment_count == 1 and november.total_minor == 200
        assert db.session.get(LineItem, e2).invoice_id == november.id


def test_resolve_denial_when_every_line_removed_issues_no_revision(app, invoice_id):
    act(app, lifecycle.deny, invoice_id, reason="x")
    lines = {_line(app, e): "gone" for e in ("E1", "E2", "E3")}
    assert act(app, lifecycle.resolve_denial, invoice_id, user="admin@example.com", reject=lines) is None


def test_resolve_denial_reject_without_reason_refused(app, invoice_id):
    act(app, lifecycle.deny, invoice_id, reason="x")
    with pytest.raises(InvoiceStateError, match="A reason is required to reject line"):
        act(
            app,
            lifecycle.resolve_denial,
            invoice_id,
            user="admin@example.com",
            reject={_line(app, "E1"): " "},
        )


def test_resolve_denial_when_line_not_on_invoice_refused(app, invoice_id, billing):
    other = billing.add(5, "2026-11-03")
    act(app, lifecycle.deny, invoice_id, reason="x")
    with pytest.raises(InvoiceStateError, match=r"are not on invoice ACME-2026-10-1"):
        act(app, lifecycle.resolve_denial, invoice_id, user="admin@example.com", unbill={other: ""})


def test_resolve_denial_twice_refused(app, invoice_id):
    act(app, lifecycle.deny, invoice_id, reason="x")
    act(app, lifecycle.resolve_denial, invoice_id, user="admin@example.com", unbill={_line(app, "E1"): ""})
    with pytest.raises(InvoiceStateError, match="cannot be resolved"):
        act(app, lifecycle.resolve_denial, invoice_id, user="admin@example.com", unbill={})


@pytest.mark.parametrize("backend", ["postgresql"])
def test_concurrent_approve_and_deny_exactly_one_wins(app, invoice_id, backend):
    outcomes, barrier = [], threading.Barrier(2)

    def decide(fn, user, **kwargs):
        with app.app_context():
            invoice = db.session.get(Invoice, invoice_id)
            by = db.session.scalar(select(User).where(User.email == user))
            barrier.wait()
            try:
                fn(invoice, by=by, **kwargs)
                db.session.commit()
                outcomes.append("won")
            except InvoiceStateError:
                db.session.rollback()
                outcomes.append("told")
            finally:
                db.session.remove()

    threads = [
        threading.Thread(target=decide, args=(lifecycle.approve, "contact@acme.example")),
        threading.Thread(
            target=decide, args=(lifecycle.deny, "second@acme.example"), kwargs={"reason": "no"}
        ),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["told", "won"]
    decided = [a for a in actions(app) if a in ("invoice.approved", "invoice.denied")]
    assert len(decided) == 1
