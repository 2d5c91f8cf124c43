"""Writes audit events: one call per state change, inside the caller's transaction; verifies the chain.

The event is added to the current session and committed with the change it describes, so an audit
row exists exactly when the change does. Actor and IP default to the current request's, if any.
Its place in the hash chain (seq, prev_hash, hash) is assigned at flush (see portal/models/audit.py);
`verify_chain()` walks the chain and reports the first event where it breaks.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import redis
from flask import current_app, has_request_context, request
from flask_login import current_user
from sqlalchemy import ColumnElement, and_, or_, select

from portal.extensions import db
from portal.models.audit import GENESIS_HASH, AuditEvent, event_hash
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


_CHAIN_COLUMNS = (
    AuditEvent.id,
    AuditEvent.seq,
    AuditEvent.occurred_at,
    AuditEvent.actor_id,
    AuditEvent.actor_label,
    AuditEvent.action,
    AuditEvent.subject_type,
    AuditEvent.subject_id,
    AuditEvent.customer_id,
    AuditEvent.partner_id,
    AuditEvent.ip,
    AuditEvent.details,
    AuditEvent.prev_hash,
    AuditEvent.hash,
)


def verify_chain(batch: int = 5000) -> tuple[bool, int, dict | None]:
    """Walk every event in seq order, `batch` at a time, recomputing hashes and links.

    Returns (ok, events checked, first_bad): first_bad names the first event whose seq does not
    follow the one before (an event was deleted or renumbered), whose prev_hash is not the previous
    event's hash (one was inserted or deleted), or whose hash does not match its content (edited).
    The head seen by the last successful verification (kept in Redis) is checked too, so events cut
    off the end of the chain since then are found as well.
    """
    anchor = last_verification() or {}
    anchor_seq, anchor_hash = anchor.get("head_seq"), anchor.get("head_hash")
    count, expected_seq, prev_hash = 0, 1, GENESIS_HASH
    last_seq = 0
    while True:
        # Plain rows, not entities: nothing accumulates in the session's identity map.
        rows = db.session.execute(
            select(*_CHAIN_COLUMNS).where(AuditEvent.seq > last_seq).order_by(AuditEvent.seq).limit(batch)
        ).all()
        if not rows:
            break
        for e in rows:
            reason = None
            if e.seq != expected_seq:
                reason = f"expected seq {expected_seq}, found {e.seq} (an event is missing)"
            elif e.prev_hash != prev_hash:
                reason = (
                    "prev_hash does not match the previous event's hash (an event was inserted or removed)"
                )
            elif e.hash != event_hash(e._mapping):
                reason = "hash does not match the event's content (the event was edited)"
            elif anchor_seq == e.seq and anchor_hash and e.hash != anchor_hash:
                reason = "this event differs from the one the last verification saw (chain rewritten)"
            if reason:
                return False, count, {"seq": e.seq, "id": e.id, "reason": reason}
            count += 1
            expected_seq, prev_hash, last_seq = e.seq + 1, e.hash, e.seq
    if anchor_seq and anchor_seq > last_seq:
        return (
            False,
            count,
            {
                "seq": anchor_seq,
                "id": None,
                "reason": f"the chain ends at seq {last_seq}, but an earlier verification saw "
                f"seq {anchor_seq} (events were removed from the end)",
            },
        )
    return True, count, None


VERIFICATION_KEY = "audit:last_verification"


def _chain_head() -> tuple[int | None, str | None]:
    row = db.session.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    return (row.seq, row.hash) if row else (None, None)


def remember_verification(ok: bool, count: int, first_bad: dict | None) -> dict:
    """Keep the result of the last chain verification in Redis, for the admin audit page.

    A full walk is too slow to repeat on every page view at a million events; Redis being down
    only loses this note, never the verification itself.
    """
    from portal import jobs

    result = {"ok": ok, "count": count, "first_bad": first_bad, "at": utcnow().isoformat()}
    previous = last_verification() or {}
    if ok:  # the head this verification vouched for; the next one checks it is still there
        result["head_seq"], result["head_hash"] = _chain_head()
    else:  # keep the last good head, so a broken chain cannot erase the evidence
        result["head_seq"], result["head_hash"] = previous.get("head_seq"), previous.get("head_hash")
    try:
        jobs.get_connection().set(VERIFICATION_KEY, json.dumps(result))
    except redis.RedisError:
        current_app.logger.warning("could not store the audit verification result", exc_info=True)
    return result


def last_verification() -> dict | None:
    """The last stored verification result ({ok, count, first_bad, at}), or None."""
    from portal import jobs

    try:
        raw = jobs.get_connection().get(VERIFICATION_KEY)
    except redis.RedisError:
        return None
    if not raw:
        return None
    result = json.loads(raw)
    result["at"] = datetime.fromisoformat(result["at"])
    return result


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
}


def describe(action: str) -> str:
    """An action in plain words for customers and partners ("invoice.viewed" -> "Invoice viewed")."""
    return PLAIN_WORDS.get(action) or action.replace(".", " ").replace("_", " ").capitalize()


def subject_trail(subject, *, user: User) -> list[tuple[AuditEvent, str]]:
    """The events about one object that `user`'s tenant may see, newest first, with plain words.

    Scoped by the tenancy helper, so a customer sees only its own events and a partner its own.
    """
    from portal.tenancy import scoped

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
    from portal.models import Delivery

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
