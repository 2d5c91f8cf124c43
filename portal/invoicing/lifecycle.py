"""The invoice lifecycle: one function per transition, each checking the state and writing the audit event.

pending_approval -> approved -> delivered; pending_approval -> denied (reason required); a denied
invoice is resolved by an admin into a new revision; void by an admin with a reason. Every transition
is one UPDATE guarded by the current status, so of two decisions at the same moment exactly one
wins, on PostgreSQL and SQLite alike, and the other is told who decided first. Steps that must read
before they write (approving with no line under dispute, flagging a line) first `lock` the invoice.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select, update

from portal import jobs
from portal.core import audit
from portal.extensions import db
from portal.invoicing.build import base_number, store_totals, with_suffixes
from portal.invoicing.notify import notify_awaiting_approval, notify_denied
from portal.invoicing.terms import due_date
from portal.models import Dispute, DisputeStatus, Invoice, InvoiceStatus, LineItem, User
from portal.models.base import utcnow
from portal.rendering.deliverables import render_invoice

S = InvoiceStatus


class InvoiceStateError(ValueError):
    """The transition is not allowed from the invoice's current status."""


def _refuse(invoice: Invoice, action: str) -> InvoiceStateError:
    db.session.refresh(invoice)
    message = f"Invoice {invoice.number} is {invoice.status.label.lower()}; it cannot be {action}."
    if invoice.decided_at and invoice.status in (S.APPROVED, S.DENIED, S.DELIVERED):
        who = invoice.decided_by.email if invoice.decided_by else "the system"
        verb = "denied" if invoice.status == S.DENIED else "approved"
        message += f" It was {verb} by {who} at {invoice.decided_at:%Y-%m-%d %H:%M} UTC."
    return InvoiceStateError(message)


def lock(invoice: Invoice) -> Invoice:
    """Hold the invoice's row until this transaction ends, and re-read it.

    Taken by every step that reads before it writes (flag a line, approve with no open flag, approve
    the undisputed lines), so two such steps on one invoice run one after the other and the second
    sees what the first committed: a flag raised as another contact approves either lands before
    the approval (which then refuses) or is refused itself. PostgreSQL: SELECT ... FOR NO KEY UPDATE (in
    READ COMMITTED, later statements see what committed while we waited). SQLite: pysqlite takes the
    database write lock only at the first write, so a no-op UPDATE takes it now.
    """
    if db.session.connection().dialect.name == "sqlite":
        db.session.execute(
            update(Invoice)
            .where(Invoice.id == invoice.id)
            .values(id=Invoice.id)
            .execution_options(synchronize_session=False)
        )
    else:
        # NO KEY UPDATE: it excludes other lockers and status changes, yet lets rows that refer to
        # the invoice (disputes, audit events) be inserted meanwhile, so it cannot deadlock with them.
        db.session.execute(select(Invoice.id).where(Invoice.id == invoice.id).with_for_update(key_share=True))
    db.session.refresh(invoice)
    return invoice


def disputed_line_count(invoice: Invoice) -> int:
    """Lines still on the invoice that a contact flagged (open disputes); approval must hold them."""
    return db.session.scalar(
        select(func.count(Dispute.id))
        .join(LineItem, LineItem.id == Dispute.line_item_id)
        .where(
            Dispute.invoice_id == invoice.id,
            Dispute.status == DisputeStatus.OPEN,
            LineItem.invoice_id == invoice.id,
        )
    )


def _transition(invoice: Invoice, allowed: tuple[InvoiceStatus, ...], action: str, *also, **values) -> None:
    """One UPDATE guarded by the current status (and the conditions `also`); refused if it matched none."""
    changed = db.session.execute(
        update(Invoice)
        .where(Invoice.id == invoice.id, Invoice.status.in_(allowed), *also)
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not changed:
        raise _refuse(invoice, action)
    db.session.refresh(invoice)


def approve(invoice: Invoice, *, by: User | None, comment: str | None = None) -> InvoiceStatus:
    """Approve the whole invoice; refused while any of its lines is flagged as disputed.

    An approved invoice never bills a disputed line: the flags are checked under the invoice's lock,
    so a flag raised at the same moment is either seen here or refused there.
    """
    lock(invoice)
    flagged = disputed_line_count(invoice) if invoice.status == S.PENDING_APPROVAL else 0
    if flagged:
        raise InvoiceStateError(
            f"{flagged} line(s) are disputed: approve the undisputed lines, or withdraw the flags first."
        )
    now = utcnow()
    _transition(
        invoice,
        (S.PENDING_APPROVAL,),
        "approved",
        status=S.APPROVED,
        decided_at=now,
        decided_by_id=by.id if by else None,
        decision_comment=(comment or "").strip() or None,
        due_on=due_date(invoice.customer, now),
    )
    audit.record(
        "invoice.approved",
        subject=invoice,
        actor=by,
        details={
            "number": invoice.number,
            "comment": invoice.decision_comment,
            "due_on": invoice.due_on.isoformat(),
        },
    )
    # The deliverables are rendered (and then delivered) by a job recorded with the approval.
    invoice.render_job_id = jobs.enqueue(
        render_invoice,
        invoice.id,
        queue="render",
        description=f"Render {invoice.number}",
    ).id
    return invoice.status


def deny(invoice: Invoice, *, by: User | None, reason: str) -> InvoiceStatus:
    reason = (reason or "").strip()
    if not reason:
        raise InvoiceStateError("A reason is required to deny an invoice.")
    _transition(
        invoice,
        (S.PENDING_APPROVAL,),
        "denied",
        status=S.DENIED,
        decided_at=utcnow(),
        decided_by_id=by.id if by else None,
        deny_reason=reason,
    )
    audit.record(
        "invoice.denied", subject=invoice, actor=by, details={"number": invoice.number, "reason": reason}
    )
    jobs.enqueue(notify_denied, invoice.id, description=f"Tell admins {invoice.number} was denied")
    return invoice.status


def mark_delivered(invoice: Invoice, *, by: User | None = None) -> InvoiceStatus:
    _transition(invoice, (S.APPROVED,), "marked delivered", status=S.DELIVERED, delivered_at=utcnow())
    audit.record("invoice.delivered", subject=invoice, actor=by, details={"number": invoice.number})
    return invoice.status


def void(invoice: Invoice, *, by: User | None, reason: str) -> InvoiceStatus:
    """Void an invoice that was not delivered; its lines go back to unbilled so nothing is lost."""
    reason = (reason or "").strip()
    if not reason:
        raise InvoiceStateError("A reason is required to void an invoice.")
    _transition(
        invoice, (S.PENDING_APPROVAL, S.APPROVED, S.DENIED), "voided", status=S.VOID, void_reason=reason
    )
    closed_flags = _close_open_disputes(invoice)
    released = db.session.execute(
        update(LineItem)
        .where(LineItem.invoice_id == invoice.id)
        .values(invoice_id=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    audit.record(
        "invoice.voided",
        subject=invoice,
        actor=by,
        details={
            "number": invoice.number,
            "reason": reason,
            "lines_unbilled": released,
            # Flags the contact had raised: those lines go back to unbilled with the rest.
            "closed_disputes": closed_flags,
        },
    )
    return invoice.status


def _close_open_disputes(invoice: Invoice) -> list[int]:
    """Remove the open line flags of an invoice (kept in the audit trail), so they hold no line back."""
    flagged = list(
        db.session.scalars(
            select(Dispute.line_item_id).where(
                Dispute.invoice_id == invoice.id, Dispute.status == DisputeStatus.OPEN
            )
        )
    )
    if flagged:
        db.session.execute(
            delete(Dispute).where(Dispute.invoice_id == invoice.id, Dispute.status == DisputeStatus.OPEN)
        )
    return flagged


def resolve_denial(
    invoice: Invoice,
    *,
    by: User | None,
    unbill: dict[int, str] | None = None,
    reject: dict[int, str] | None = None,
) -> Invoice | None:
    """An admin's resolution of a denied invoice; returns the new revision, or None if nothing is left.

    `unbill` lines go back to unbilled (they will be billed again later); `reject` lines are rejected
    back to the partner with the given reason and never billed. The remaining lines move to a new
    revision (pending approval again); the denied revision keeps its own line list and totals.
    """
    unbill, reject = unbill or {}, reject or {}
    if invoice.status != S.DENIED or invoice.resolved_at is not None:
        raise _refuse(invoice, "resolved (only an unresolved denied invoice can be)")
    both = set(unbill) & set(reject)
    if both:
        raise InvoiceStateError(f"Line(s) {sorted(both)} cannot be both unbilled and rejected.")
    missing_reason = [line_id for line_id, reason in reject.items() if not (reason or "").strip()]
    if missing_reason:
        raise InvoiceStateError(
            f"A reason is required to reject line(s) {sorted(missing_reason)} back to the partner."
        )
    chosen = set(unbill) | set(reject)
    on_invoice = set(
        db.session.scalars(
            select(LineItem.id).where(LineItem.invoice_id == invoice.id, LineItem.id.in_(chosen))
        )
    )
    if chosen - on_invoice:
        raise InvoiceStateError(f"Line(s) {sorted(chosen - on_invoice)} are not on invoice {invoice.number}.")
    # Guarded on resolved_at too: of two admins resolving at once, one issues the revision.
    _transition(
        invoice,
        (S.DENIED,),
        "resolved (only an unresolved denied invoice can be)",
        Invoice.resolved_at.is_(None),
        resolved_at=utcnow(),
    )
    # The contact's flags on this revision were answered line by line above: they are closed.
    closed_flags = _close_open_disputes(invoice)
    if unbill:
        db.session.execute(
            update(LineItem)
            .where(LineItem.id.in_(unbill))
            .values(invoice_id=None)
            .execution_options(synchronize_session=False)
        )
    now = utcnow()
    for line_id, reason in reject.items():
        db.session.execute(
            update(LineItem)
            .where(LineItem.id == line_id)
            .values(invoice_id=None, rejected_at=now, rejection_reason=reason.strip())
            .execution_options(synchronize_session=False)
        )
    audit.record(
        "invoice.denial_resolved",
        subject=invoice,
        actor=by,
        details={
            "number": invoice.number,
            "unbilled": sorted(unbill),
            "rejected": {str(k): v for k, v in sorted(reject.items())},
            "closed_disputes": closed_flags,
        },
    )
    remaining = db.session.scalar(select(func.count(LineItem.id)).where(LineItem.invoice_id == invoice.id))
    if not remaining:
        return None
    base_revision = invoice.revision + 1
    # A supplemental invoice's revision stays supplemental: same -S<n>, next -R<n>.
    revision = Invoice(
        number=with_suffixes(
            base_number(invoice.number), supplement=invoice.supplement, revision=base_revision
        ),
        customer_id=invoice.customer_id,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        currency=invoice.currency,
        revision=base_revision,
        supplement=invoice.supplement,
        supersedes_id=invoice.id,
        status=S.PENDING_APPROVAL,
        created_by_id=by.id if by else None,
    )
    db.session.add(revision)
    db.session.flush()
    db.session.execute(
        update(LineItem)
        .where(LineItem.invoice_id == invoice.id)
        .values(invoice_id=revision.id)
        .execution_options(synchronize_session=False)
    )
    store_totals(revision)
    audit.record(
        "invoice.generated",
        subject=revision,
        actor=by,
        details={
            "number": revision.number,
            "revision": revision.revision,
            "supersedes": invoice.number,
            "total_minor": revision.total_minor,
            "lines": revision.line_count,
        },
    )
    jobs.enqueue(notify_awaiting_approval, revision.id, description=f"Notify {revision.number}")
    return revision
