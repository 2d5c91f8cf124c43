"""Line-level disputes: a contact flags lines before deciding, approves the rest, and admins resolve each.

A line under an open dispute is held once the rest is approved: it is on no invoice and no build
takes it, until an admin re-bills it on a supplemental invoice (which follows the normal approval
flow) or rejects it back to the partner with a reason. Before the decision a flag only marks the line;
a denial's resolution or a void closes it. Each resolution is one UPDATE guarded by the dispute's
status, so two admins (or a double click) resolve a dispute once.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select, update

from portal import jobs
from portal.core import audit
from portal.extensions import db
from portal.invoicing.build import base_number, store_totals, with_suffixes
from portal.invoicing.lifecycle import InvoiceStateError, approve, lock
from portal.invoicing.notify import notify_awaiting_approval
from portal.models import (
    Customer,
    Dispute,
    DisputeStatus,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    InvoiceTotal,
    LineItem,
    User,
)
from portal.models.base import utcnow


def _pending(invoice: Invoice, action: str) -> None:
    if invoice.status != InvoiceStatus.PENDING_APPROVAL:
        state = invoice.status.label.lower()
        raise InvoiceStateError(
            f"Invoice {invoice.number} is {state}; lines can be {action} only before a decision."
        )


def flag_line(invoice: Invoice, line_item_id: int, *, by: User | None, comment: str) -> Dispute:
    """Flag one line of an invoice awaiting decision as disputed (or update the comment)."""
    comment = (comment or "").strip()
    if not comment:
        raise InvoiceStateError("Say what is wrong with the line: a comment is required to dispute it.")
    lock(invoice)  # against an approval at the same moment (see lifecycle.lock)
    _pending(invoice, "disputed")
    on_invoice = db.session.scalar(
        select(LineItem.id).where(LineItem.id == line_item_id, LineItem.invoice_id == invoice.id)
    )
    if on_invoice is None:
        raise InvoiceStateError(f"Line {line_item_id} is not on invoice {invoice.number}.")
    dispute = db.session.scalar(
        select(Dispute).where(Dispute.invoice_id == invoice.id, Dispute.line_item_id == line_item_id)
    )
    if dispute is None:
        dispute = Dispute(
            invoice_id=invoice.id,
            line_item_id=line_item_id,
            customer_id=invoice.customer_id,
            raised_by_id=by.id if by else None,
            comment=comment,
        )
        db.session.add(dispute)
        db.session.flush()
    elif dispute.status != DisputeStatus.OPEN:
        raise InvoiceStateError(
            f"Line {line_item_id} was already disputed and {dispute.status.value} by our team."
        )
    else:
        dispute.comment = comment
    # Dispute events are about the invoice, so they stand in its history for the customer.
    audit.record(
        "dispute.raised",
        subject=invoice,
        actor=by,
        details={
            "invoice": invoice.number,
            "dispute_id": dispute.id,
            "line_item_id": line_item_id,
            "comment": comment,
        },
    )
    return dispute


def withdraw(dispute: Dispute, *, by: User | None) -> None:
    """Take a flag back while the invoice still awaits a decision."""
    invoice = lock(db.session.get(Invoice, dispute.invoice_id))
    _pending(invoice, "un-disputed")
    audit.record(
        "dispute.withdrawn",
        subject=invoice,
        actor=by,
        details={"invoice": invoice.number, "dispute_id": dispute.id, "line_item_id": dispute.line_item_id},
    )
    db.session.delete(dispute)


def open_disputes(invoice: Invoice) -> dict[int, Dispute]:
    """Open disputes of an invoice by line item id."""
    return {
        d.line_item_id: d
        for d in db.session.scalars(
            select(Dispute).where(Dispute.invoice_id == invoice.id, Dispute.status == DisputeStatus.OPEN)
        )
    }


def approve_undisputed(invoice: Invoice, *, by: User | None, comment: str | None = None) -> list[int]:
    """Approve the invoice without its disputed lines; they wait in the admin's dispute queue.

    The invoice's lines and stored totals are rebuilt without the disputed lines, so what was
    approved is exactly what its pages and files show. Returns the held line ids.
    """
    lock(invoice)  # the flags read below are all there are until we commit
    _pending(invoice, "approved without disputed lines")
    held = sorted(open_disputes(invoice))
    if not held:
        raise InvoiceStateError("No line is disputed: approve the whole invoice instead.")
    remaining = db.session.scalar(
        select(func.count(LineItem.id)).where(LineItem.invoice_id == invoice.id, LineItem.id.not_in(held))
    )
    if not remaining:
        raise InvoiceStateError("Every line is disputed: deny the invoice instead, with the reason.")
    db.session.execute(
        update(LineItem)
        .where(LineItem.id.in_(held), LineItem.invoice_id == invoice.id)
        .values(invoice_id=None)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(delete(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id))
    db.session.execute(delete(InvoiceTotal).where(InvoiceTotal.invoice_id == invoice.id))
    store_totals(invoice)
    approve(invoice, by=by, comment=comment)
    audit.record(
        "invoice.approved_undisputed",
        subject=invoice,
        actor=by,
        details={"number": invoice.number, "held_line_ids": held, "total_minor": invoice.total_minor},
    )
    return held


def _resolvable(disputes: list[Dispute]) -> Invoice:
    """The one invoice the open `disputes` were raised on, if it was approved (their lines held)."""
    parents = {d.invoice_id for d in disputes}
    if len(parents) != 1:
        raise InvoiceStateError("Resolve the disputed lines of one invoice at a time.")
    parent = db.session.get(Invoice, parents.pop())
    if parent.status == InvoiceStatus.PENDING_APPROVAL:
        raise InvoiceStateError(
            f"Invoice {parent.number} still awaits the customer's decision: its disputed lines can be "
            "resolved once the customer approves the rest."
        )
    if parent.status not in (InvoiceStatus.APPROVED, InvoiceStatus.DELIVERED):
        raise InvoiceStateError(
            f"Invoice {parent.number} is {parent.status.label.lower()}: its disputed lines are resolved "
            "with the invoice, not here."
        )
    return parent


def _close(disputes: list[Dispute], status: DisputeStatus, *, by: User | None, reason: str | None) -> None:
    """Mark open disputes resolved in one guarded UPDATE; refused if any was resolved meanwhile."""
    ids = [d.id for d in disputes]
    closed = db.session.execute(
        update(Dispute)
        .where(Dispute.id.in_(ids), Dispute.status == DisputeStatus.OPEN)
        .values(
            status=status,
            resolution_reason=reason,
            resolved_by_id=by.id if by else None,
            resolved_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if closed != len(ids):
        raise InvoiceStateError(
            "Only open disputes can be resolved, and this one was resolved already "
            "(perhaps by another admin just now)."
        )
    for dispute in disputes:
        db.session.refresh(dispute)


def _still_held(line_ids: list[int], moved: int) -> None:
    if moved != len(line_ids):
        raise InvoiceStateError(
            f"Line(s) {sorted(line_ids)} are no longer held off their invoice; nothing was changed."
        )


def rebill(disputes: list[Dispute], *, by: User | None, reason: str = "") -> Invoice:
    """Put open disputed lines of one approved invoice on a supplemental invoice awaiting approval."""
    if not disputes:
        raise InvoiceStateError("Choose at least one disputed line to re-bill.")
    parent = _resolvable(disputes)
    # The customer's row lock serializes supplemental numbering: two re-bills of one period never
    # take the same -S<n>. NO KEY UPDATE, so rows referring to the customer (audit events of a
    # concurrent rejection) can still be inserted: FOR UPDATE would deadlock with them.
    db.session.execute(
        select(Customer.id).where(Customer.id == parent.customer_id).with_for_update(key_share=True)
    )
    _close(disputes, DisputeStatus.REBILLED, by=by, reason=(reason or "").strip() or None)
    supplement = (
        db.session.scalar(
            select(func.max(Invoice.supplement)).where(
                Invoice.customer_id == parent.customer_id,
                Invoice.period_start == parent.period_start,
                Invoice.currency == parent.currency,
            )
        )
        or 0
    ) + 1
    invoice = Invoice(
        number=with_suffixes(base_number(parent.number), supplement=supplement),
        customer_id=parent.customer_id,
        period_start=parent.period_start,
        period_end=parent.period_end,
        currency=parent.currency,
        revision=1,
        supplement=supplement,
        status=InvoiceStatus.PENDING_APPROVAL,
        created_by_id=by.id if by else None,
    )
    db.session.add(invoice)
    db.session.flush()
    line_ids = [d.line_item_id for d in disputes]
    moved = db.session.execute(
        update(LineItem)
        .where(LineItem.id.in_(line_ids), LineItem.invoice_id.is_(None), LineItem.rejected_at.is_(None))
        .values(invoice_id=invoice.id)
        .execution_options(synchronize_session=False)
    ).rowcount
    _still_held(line_ids, moved)
    store_totals(invoice)
    for dispute in disputes:
        dispute.supplemental_invoice_id = invoice.id
    audit.record(
        "dispute.rebilled",
        subject=parent,
        actor=by,
        details={
            "number": invoice.number,
            "parent": parent.number,
            "dispute_ids": [d.id for d in disputes],
            "line_item_ids": line_ids,
            "reason": reason,
        },
    )
    audit.record(
        "invoice.generated",
        subject=invoice,
        actor=by,
        details={
            "number": invoice.number,
            "supplemental_to": parent.number,
            "total_minor": invoice.total_minor,
        },
    )
    jobs.enqueue(notify_awaiting_approval, invoice.id, description=f"Notify {invoice.number}")
    return invoice


def reject(dispute: Dispute, *, by: User | None, reason: str) -> None:
    """Reject a disputed line of an approved invoice back to the partner with a reason; never billed."""
    reason = (reason or "").strip()
    if not reason:
        raise InvoiceStateError("A reason is required to reject a line back to the partner.")
    parent = _resolvable([dispute])
    _close([dispute], DisputeStatus.REJECTED, by=by, reason=reason)
    moved = db.session.execute(
        update(LineItem)
        .where(
            LineItem.id == dispute.line_item_id,
            LineItem.invoice_id.is_(None),
            LineItem.rejected_at.is_(None),
        )
        .values(rejected_at=dispute.resolved_at, rejection_reason=reason)
        .execution_options(synchronize_session=False)
    ).rowcount
    _still_held([dispute.line_item_id], moved)
    audit.record(
        "dispute.rejected",
        subject=parent,
        actor=by,
        details={
            "invoice": parent.number,
            "dispute_id": dispute.id,
            "line_item_id": dispute.line_item_id,
            "reason": reason,
        },
    )
