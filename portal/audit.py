"""Writes audit events: one call per state change, inside the caller's transaction.

The event is added to the current session and committed with the change it describes, so an audit
row exists exactly when the change does. Actor and IP default to the current request's, if any.
"""

from __future__ import annotations

from typing import Any

from flask import has_request_context, request
from flask_login import current_user

from portal.extensions import db
from portal.models.audit import AuditEvent
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
    event = AuditEvent(
        actor=actor,
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
