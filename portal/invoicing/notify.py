"""Invoice notifications: awaiting approval, reminders, denials; sent as jobs through portal.core.mail.

Each job takes an invoice id, sends at most once per state (it re-checks the state first), and
records who was told in the audit trail.
"""

from __future__ import annotations

import datetime as dt

from flask import current_app
from sqlalchemy import or_, select

from portal.core import audit, formatting
from portal.core.mail import render_mail, send_mail
from portal.extensions import db
from portal.models import Invoice, InvoiceStatus, Role, User
from portal.models.base import utcnow


def _contacts(customer_id: int) -> list[str]:
    return list(
        db.session.scalars(
            select(User.email).where(
                User.role == Role.CUSTOMER, User.customer_id == customer_id, User.active.is_(True)
            )
        )
    )


def _url(path: str) -> str:
    return current_app.config["PORTAL_BASE_URL"].rstrip("/") + path


def invoice_mail_context(invoice: Invoice, *, path: str | None = None) -> dict:
    """The facts every invoice email shows, formatted for the customer (`Customer.locale`).

    The email channel of delivery uses it too, so an invoice reads the same in every message.
    `path` is the page the button opens: the customer's invoice page unless given.
    """
    customer = invoice.customer
    locale = customer.locale or formatting.DEFAULT_LOCALE
    return {
        "customer_name": customer.name,
        "kind": invoice.kind_label,
        "invoice_number": invoice.number,
        "period": formatting.period(invoice.period_start, locale),
        "total": formatting.money(invoice.total_minor, invoice.currency, locale),
        "due_on": formatting.date(invoice.due_on, locale),
        "payment_terms": customer.payment_terms,
        "url": _url(path or f"/customer/invoices/{invoice.id}"),
    }


def notify_awaiting_approval(invoice_id: int) -> dict:
    """Email the customer's contacts that an invoice awaits their decision."""
    invoice = db.session.get(Invoice, invoice_id)
    if invoice is None or invoice.status != InvoiceStatus.PENDING_APPROVAL:
        return {"sent": 0, "reason": "not pending approval"}
    recipients = _contacts(invoice.customer_id)
    if not recipients:
        audit.record(
            "invoice.notification_skipped", subject=invoice, details={"reason": "no active customer contact"}
        )
        db.session.commit()
        return {"sent": 0, "reason": "no contacts"}
    text, html = render_mail("invoice_awaiting_approval", **invoice_mail_context(invoice))
    subject = f"{invoice.kind_label} {invoice.number} for {invoice.period_label} awaits your approval"
    message_id = send_mail(recipients, subject, text=text, html=html)
    audit.record("invoice.notified", subject=invoice, details={"to": recipients, "message_id": message_id})
    db.session.commit()
    return {"sent": len(recipients)}


def send_reminders(now: dt.datetime | None = None) -> int:
    """Remind contacts of invoices waiting over INVOICE_REMINDER_DAYS, at most once per that many days."""
    now = now or utcnow()
    days = current_app.config["INVOICE_REMINDER_DAYS"]
    cutoff = now - dt.timedelta(days=days)
    waiting = db.session.scalars(
        select(Invoice).where(
            Invoice.status == InvoiceStatus.PENDING_APPROVAL,
            Invoice.created_at <= cutoff,
            or_(Invoice.reminded_at.is_(None), Invoice.reminded_at <= cutoff),
        )
    ).all()
    sent = 0
    for invoice in waiting:
        recipients = _contacts(invoice.customer_id)
        if not recipients:
            continue
        waited = (now - invoice.created_at).days
        text, html = render_mail("invoice_reminder", days_waiting=waited, **invoice_mail_context(invoice))
        kind = invoice.kind_label.lower()
        subject = f"Reminder: {kind} {invoice.number} has waited {waited} days for your approval"
        send_mail(recipients, subject, text=text, html=html)
        invoice.reminded_at = now
        audit.record("invoice.reminded", subject=invoice, details={"to": recipients, "days_waiting": waited})
        db.session.commit()
        sent += 1
    return sent


def notify_denied(invoice_id: int) -> dict:
    """Tell every active admin that a customer denied an invoice, with the reason."""
    invoice = db.session.get(Invoice, invoice_id)
    if invoice is None or invoice.status != InvoiceStatus.DENIED:
        return {"sent": 0}
    admins = list(
        db.session.scalars(select(User.email).where(User.role == Role.ADMIN, User.active.is_(True)))
    )
    if not admins:
        return {"sent": 0}
    text, html = render_mail(
        "invoice_denied",
        reason=invoice.deny_reason,
        denied_by=invoice.decided_by.email if invoice.decided_by else "the customer",
        **invoice_mail_context(invoice, path=f"/admin/invoices/{invoice.id}"),
    )
    send_mail(admins, f"{invoice.customer.name} denied invoice {invoice.number}", text=text, html=html)
    audit.record("invoice.denial_notified", subject=invoice, details={"to": admins})
    db.session.commit()
    return {"sent": len(admins)}
