"""Line-level disputes: a contact flags lines before deciding, approves the rest, and admins resolve each.

A line under an open dispute is held: it is on no invoice and no build takes it, until an admin
re-bills it on a supplemental invoice (which follows the normal approval flow) or rejects it back to
the partner with a reason.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select, update

from portal import audit, jobs
from portal.extensions import db
from portal.invoicing.build import store_totals
from portal.invoicing.lifecycle import InvoiceStateError, approve
from portal.models import (
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
    else:
        dispute.comment = comment
    audit.record(
        "dispute.raised",
        subject=dispute,
        actor=by,
        details={"invoice": invoice.number, "line_item_id": line_item_id, "comment": comment},
    )
    return dispute


def withdraw(dispute: Dispute, *, by: User | None) -> None:
    """Take a flag back while the invoice still awaits a decision."""
    invoice = db.session.get(Invoice, dispute.invoice_id)
    _pending(invoice, "un-disputed")
    audit.record(
        "dispute.withdrawn",
        subject=dispute,
        actor=by,
        details={"invoice": invoice.number, "line_item_id": dispute.line_item_id},
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


def rebill(disputes: list[Dispute], *, by: User | None, reason: str = "") -> Invoice:
    """Put open disputed lines of one invoice on a supplemental invoice awaiting approval."""
    if not disputes:
        raise InvoiceStateError("Choose at least one disputed line to re-bill.")
    if any(d.status != DisputeStatus.OPEN for d in disputes):
        raise InvoiceStateError("Only open disputes can be re-billed.")
    parents = {d.invoice_id for d in disputes}
    if len(parents) != 1:
        raise InvoiceStateError("Re-bill the disputed lines of one invoice at a time.")
    parent = db.session.get(Invoice, parents.pop())
    if parent.status not in (InvoiceStatus.APPROVED, InvoiceStatus.DELIVERED):
        raise InvoiceStateError(
            f"Invoice {parent.number} must be approved before its disputed lines are re-billed."
        )
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
    base = parent.number.split("-R")[0]
    invoice = Invoice(
        number=f"{base}-S{supplement}",
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
    db.session.execute(
        update(LineItem)
        .where(LineItem.id.in_(line_ids), LineItem.invoice_id.is_(None))
        .values(invoice_id=invoice.id)
        .execution_options(synchronize_session=False)
    )
    store_totals(invoice)
    now = utcnow()
    for dispute in disputes:
        dispute.status = DisputeStatus.REBILLED
        dispute.resolution_reason = (reason or "").strip() or None
        dispute.resolved_by_id = by.id if by else None
        dispute.resolved_at = now
        dispute.supplemental_invoice_id = invoice.id
    audit.record(
        "dispute.rebilled",
        subject=invoice,
        actor=by,
        details={
            "number": invoice.number,
            "parent": parent.number,
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
    from portal.invoicing.notify import notify_awaiting_approval

    jobs.enqueue(notify_awaiting_approval, invoice.id, description=f"Notify {invoice.number}")
    return invoice


def reject(dispute: Dispute, *, by: User | None, reason: str) -> None:
    """Reject a disputed line back to the partner with a reason; it is never billed."""
    reason = (reason or "").strip()
    if not reason:
        raise InvoiceStateError("A reason is required to reject a line back to the partner.")
    if dispute.status != DisputeStatus.OPEN:
        raise InvoiceStateError("Only open disputes can be rejected.")
    now = utcnow()
    db.session.execute(
        update(LineItem)
        .where(LineItem.id == dispute.line_item_id, LineItem.invoice_id.is_(None))
        .values(rejected_at=now, rejection_reason=reason)
        .execution_options(synchronize_session=False)
    )
    dispute.status = DisputeStatus.REJECTED
    dispute.resolution_reason = reason
    dispute.resolved_by_id = by.id if by else None
    dispute.resolved_at = now
    audit.record(
        "dispute.rejected",
        subject=dispute,
        actor=by,
        details={"line_item_id": dispute.line_item_id, "reason": reason},
    )
