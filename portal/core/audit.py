"""Writes audit events: one call per state change, inside the caller's transaction; reads them back.

The event is added to the current session and committed with the change it describes, so an audit
row exists exactly when the change does. Actor and IP default to the current request's, if any.
Its place in the hash chain (seq, prev_hash, hash) is assigned at flush (see portal/models/audit.py);
`portal.core.audit_chain` verifies the chain and keeps the signed anchors.
"""

from __future__ import annotations

from typing import Any

from flask import has_request_context, request
from flask_login import current_user
from sqlalchemy import ColumnElement, and_, or_, select

from portal.core.tenancy import scoped
from portal.extensions import db
from portal.models import Delivery
from portal.models.audit import AuditEvent, PendingView, absorb_pending_views, append_rows
from portal.models.base import utcnow
from portal.models.users import User

SYSTEM = "system"


def _request_actor() -> tuple[User | None, str | None]:
    if not has_request_context():
        return None, None
    user = current_user._get_current_object() if current_user.is_authenticated else None
    return user, request.remote_addr


def record(
    action: str,
    *,
    subject: Any = None,
    subject_type: str | None = None,
    subject_id: Any = None,
    customer_id: int | None = None,
    partner_id: int | None = None,
    details: dict | None = None,
    actor: User | None = None,
    actor_label: str | None = None,
    ip: str | None = None,
) -> AuditEvent:
    """Add an AuditEvent for `action` to the session (the caller commits).

    `subject` may be a model instance: its class name and id fill subject_type/subject_id, and its
    customer_id / partner_id fill the tenant scope unless given.
    """
    req_user, req_ip = _request_actor()
    actor = actor or req_user
    if subject is not None:
        subject_type = subject_type or type(subject).__name__
        subject_id = subject_id if subject_id is not None else getattr(subject, "id", None)
        customer_id = customer_id if customer_id is not None else getattr(subject, "customer_id", None)
        partner_id = partner_id if partner_id is not None else getattr(subject, "partner_id", None)
    if actor is not None and customer_id is None and partner_id is None and subject is None:
        customer_id, partner_id = actor.customer_id, actor.partner_id
    if actor is not None and actor.id is None:
        db.session.flush()  # the actor's id is part of the event's hash
    event = AuditEvent(
        actor=actor,
        actor_id=actor.id if actor is not None else None,
        actor_label=actor_label or (actor.email if actor is not None else SYSTEM),
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id) if subject_id is not None else None,
        customer_id=customer_id,
        partner_id=partner_id,
        ip=ip or req_ip,
        details=details or {},
    )
    db.session.add(event)
    return event


def record_many(events: list[dict], *, actor: User | None = None) -> int:
    """Write many events in one go (a batch job's): one chain lock and one multi-row INSERT.

    Each item holds record()'s keywords except `subject` and `actor` (action, subject_type,
    subject_id, customer_id, partner_id, details); all share `actor`. Returns how many were written.
    The chain stays valid: the events take the next seqs in list order, after any pending ones.
    """
    req_user, req_ip = _request_actor()
    actor = actor or req_user
    if actor is not None and actor.id is None:
        db.session.flush()
    rows = [
        {
            "actor_id": actor.id if actor is not None else None,
            "actor_label": e.get("actor_label") or (actor.email if actor is not None else SYSTEM),
            "action": e["action"],
            "subject_type": e.get("subject_type"),
            "subject_id": str(e["subject_id"]) if e.get("subject_id") is not None else None,
            "customer_id": e.get("customer_id"),
            "partner_id": e.get("partner_id"),
            "ip": e.get("ip") or req_ip,
            "details": e.get("details") or {},
        }
        for e in events
    ]
    append_rows(db.session, rows)
    return len(rows)


PLAIN_WORDS = {
    "invoice.generated": "Invoice generated",
    "invoice.notified": "Contacts notified that the invoice awaits approval",
    "invoice.reminded": "Reminder sent",
    "invoice.viewed": "Invoice viewed",
    "invoice.approved": "Invoice approved",
    "invoice.approved_undisputed": "Undisputed lines approved",
    "invoice.denied": "Invoice denied",
    "invoice.denial_notified": "Administrators told of the denial",
    "invoice.denial_resolved": "Denial resolved",
    "invoice.voided": "Invoice voided",
    "invoice.rendered": "PDF and CSV produced",
    "invoice.delivered": "Invoice delivered",
    "invoice.downloaded": "Invoice downloaded",
    "dispute.raised": "Line disputed",
    "dispute.withdrawn": "Line dispute withdrawn",
    "dispute.rebilled": "Disputed line(s) re-billed on a supplemental invoice",
    "dispute.rejected": "Disputed line rejected back to the partner",
    "upload.received": "File uploaded",
    "upload.parsed": "File read",
    "upload.needs_mapping": "Waiting for a column mapping",
    "upload.imported": "Lines imported",
    "upload.cancelled": "Upload cancelled",
    "upload.failed": "Upload failed",
    "upload.downloaded": "Original file downloaded",
    "upload.received_from_queue": "File announced on the intake queue and fetched from S3",
    "queue.message_refused": "Intake queue message refused",
    "queue.message_dead_lettered": "Intake queue message moved to the dead-letter queue",
}


def describe(action: str) -> str:
    """An action in plain words for customers and partners ("invoice.viewed" -> "Invoice viewed")."""
    return PLAIN_WORDS.get(action) or action.replace(".", " ").replace("_", " ").capitalize()


def subject_trail(subject, *, user: User) -> list[tuple[AuditEvent, str]]:
    """The events about one object that `user`'s tenant may see, newest first, with plain words.

    Scoped by the tenancy helper, so a customer sees only its own events and a partner its own.
    """
    events = db.session.scalars(
        scoped(AuditEvent, user)
        .where(AuditEvent.subject_type == type(subject).__name__, AuditEvent.subject_id == str(subject.id))
        .order_by(AuditEvent.seq.desc())
    ).all()
    return [(event, _trail_words(event)) for event in events]


# Actions whose reason was written by the tenant who sees the trail, so it is shown with them.
TRAIL_REASONS = {"upload.cancelled"}


def _trail_words(event: AuditEvent) -> str:
    words = describe(event.action)
    reason = (event.details or {}).get("reason") if event.action in TRAIL_REASONS else None
    return f"{words}: {reason}" if reason else words


# Actions that only read (a page view, a download). The trail keeps them, as it keeps everything;
# summaries of what happened lately (the admin overview) leave them out, or views would drown them.
READ_ONLY_ACTIONS = frozenset({"invoice.viewed", "invoice.downloaded", "upload.downloaded"})

# Keys of `details` that hold the number of an invoice the event refers to without being about it as
# its subject: a delivery's events ("invoice"), a re-bill recorded on the parent ("number" of the
# supplemental invoice), a supplemental or next revision pointing back ("supplemental_to", "supersedes").
INVOICE_REFERENCE_KEYS = ("invoice", "number", "parent", "supplemental_to", "supersedes")


def about_invoice(invoice) -> ColumnElement[bool]:
    """A WHERE clause for every event about `invoice`: its own, its deliveries', and those naming it.

    Events about the invoice and its deliveries are found by subject (indexed); events that only name
    it in their details are looked for among its customer's events, where they are all recorded.
    """
    delivery_ids = db.session.scalars(select(Delivery.id).where(Delivery.invoice_id == invoice.id)).all()
    by_subject = [and_(AuditEvent.subject_type == "Invoice", AuditEvent.subject_id == str(invoice.id))]
    if delivery_ids:
        by_subject.append(
            and_(
                AuditEvent.subject_type == "Delivery",
                AuditEvent.subject_id.in_([str(i) for i in delivery_ids]),
            )
        )
    named = [AuditEvent.details[key].as_string() == invoice.number for key in INVOICE_REFERENCE_KEYS]
    return or_(*by_subject, and_(AuditEvent.customer_id == invoice.customer_id, or_(*named)))


def about_uploads(upload_ids) -> ColumnElement[bool]:
    """A WHERE clause for the events about these uploads (received, parsed, imported, downloaded...)."""
    return and_(AuditEvent.subject_type == "Upload", AuditEvent.subject_id.in_([str(i) for i in upload_ids]))


def about_user(user: User) -> ColumnElement[bool]:
    """A WHERE clause for the events about `user` (invited, role changed, logins) or done by them."""
    return or_(
        and_(AuditEvent.subject_type == "User", AuditEvent.subject_id == str(user.id)),
        AuditEvent.actor_id == user.id,
    )


# --- page views: recorded beside the chain, moved into it by the next append ------------------------

# Page views are the one kind of event recorded without the chain's lock (downloads stay chained:
# a file left the system). They reach the chain, in order, with the next append (see PendingView).
PAGE_VIEW_ACTIONS = frozenset({"invoice.viewed"})


def record_view(action: str, *, subject: Any) -> PendingView:
    """Add a page view of `subject` to the session (the caller commits), without the chain's lock.

    The view carries what `record()` would give it (actor, IP, the subject's tenant and its time);
    it joins the chain with the next append, so trails and the audit log show it as any event.
    """
    if action not in PAGE_VIEW_ACTIONS:
        raise ValueError(f"{action!r} is not a page view; record it with audit.record()")
    actor, ip = _request_actor()
    view = PendingView(
        occurred_at=utcnow(),
        actor_id=actor.id if actor is not None else None,
        actor_label=actor.email if actor is not None else SYSTEM,
        action=action,
        subject_type=type(subject).__name__,
        subject_id=str(subject.id),
        customer_id=getattr(subject, "customer_id", None),
        partner_id=getattr(subject, "partner_id", None),
        ip=ip,
        details={},
    )
    db.session.add(view)
    return view


def absorb_views() -> None:
    """Move the page views recorded so far into the chain and commit, so what is read next shows them.

    Called before the audit pages and trails are read, and every minute by a job. When none wait it
    costs one indexed read and takes no lock.
    """
    if db.session.execute(select(PendingView.id).limit(1)).first() is None:
        return
    absorb_pending_views(db.session)
    db.session.commit()
