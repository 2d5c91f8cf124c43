"""The audit log's queries without the pages: filters turned into WHERE clauses, subjects named as
people name them (one query per subject type), and details made readable (changes, amounts).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from flask import url_for
from sqlalchemy import String, cast, false, func, or_, select

from portal.core import audit
from portal.core.money import format_money
from portal.extensions import db
from portal.models import (
    AuditEvent,
    Customer,
    Delivery,
    DeliveryChannel,
    Employee,
    Invoice,
    JobRecord,
    MappingProfileVersion,
    Partner,
    Upload,
    User,
)
from portal.web.inputs import parse_date, parse_id

FILTERS = (
    "actor", "action", "subject_type", "subject_id", "customer", "partner", "invoice", "upload", "user",
    "from", "to", "q", "hide_reads",
)  # fmt: skip


# --- subjects as people name them -----------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    label: str
    url: str | None = None


def _int_ids(ids: Iterable[str]) -> list[int]:
    # A subject id that is not a database id ("²", or past PostgreSQL's integer) names no object:
    # left out here, it reads "<Type> <id>" instead of breaking the query (and a CSV export).
    return [i for i in map(parse_id, ids) if i is not None]


def _invoices(ids):
    rows = db.session.execute(select(Invoice.id, Invoice.number).where(Invoice.id.in_(_int_ids(ids))))
    return {
        str(r.id): Subject(f"Invoice {r.number}", url_for("admin.invoice", invoice_id=r.id)) for r in rows
    }


def _users(ids):
    rows = db.session.execute(select(User.id, User.email).where(User.id.in_(_int_ids(ids))))
    return {str(r.id): Subject(r.email, url_for("admin.user_detail", user_id=r.id)) for r in rows}


def _uploads(ids):
    rows = db.session.execute(select(Upload.id, Upload.filename).where(Upload.id.in_(_int_ids(ids))))
    return {
        str(r.id): Subject(f"Upload #{r.id} ({r.filename})", url_for("admin.upload_detail", upload_id=r.id))
        for r in rows
    }


def _customers(ids):
    rows = db.session.execute(select(Customer.id, Customer.code).where(Customer.id.in_(_int_ids(ids))))
    return {
        str(r.id): Subject(f"Customer {r.code}", url_for("admin.customer_edit", customer_id=r.id))
        for r in rows
    }


def _partners(ids):
    rows = db.session.execute(select(Partner.id, Partner.slug).where(Partner.id.in_(_int_ids(ids))))
    return {
        str(r.id): Subject(f"Partner {r.slug}", url_for("admin.partner_edit", partner_id=r.id)) for r in rows
    }


def _employees(ids):
    rows = db.session.execute(
        select(Employee.id, Employee.customer_id, Employee.external_id, Employee.name, Customer.code)
        .join(Customer, Customer.id == Employee.customer_id)
        .where(Employee.id.in_(_int_ids(ids)))
    )
    return {
        str(r.id): Subject(
            f"Employee {r.external_id} ({r.name}) of {r.code}",
            url_for("admin.employee_form", customer_id=r.customer_id, employee_id=r.id),
        )
        for r in rows
    }


def _deliveries(ids):
    rows = db.session.execute(
        select(Delivery.id, Delivery.invoice_id, Invoice.number, DeliveryChannel.kind)
        .join(Invoice, Invoice.id == Delivery.invoice_id)
        .join(DeliveryChannel, DeliveryChannel.id == Delivery.channel_id)
        .where(Delivery.id.in_(_int_ids(ids)))
    )
    return {
        str(r.id): Subject(
            f"Delivery #{r.id} of invoice {r.number} ({r.kind.value})",
            url_for("admin.invoice", invoice_id=r.invoice_id),
        )
        for r in rows
    }


def _channels(ids):
    rows = db.session.execute(
        select(DeliveryChannel.id, DeliveryChannel.kind, Customer.code)
        .join(Customer, Customer.id == DeliveryChannel.customer_id)
        .where(DeliveryChannel.id.in_(_int_ids(ids)))
    )
    return {
        str(r.id): Subject(
            f"{r.kind.value.capitalize()} channel #{r.id} of {r.code}", url_for("admin.customers")
        )
        for r in rows
    }


def _mappings(ids):
    rows = db.session.execute(
        select(
            MappingProfileVersion.id,
            MappingProfileVersion.partner_id,
            MappingProfileVersion.name,
            MappingProfileVersion.version,
            Partner.slug,
        )
        .join(Partner, Partner.id == MappingProfileVersion.partner_id)
        .where(MappingProfileVersion.id.in_(_int_ids(ids)))
    )
    return {
        str(r.id): Subject(
            f"Mapping {r.name} v{r.version} of {r.slug}", url_for("admin.mappings", partner_id=r.partner_id)
        )
        for r in rows
    }


def _jobs(ids):
    rows = db.session.execute(
        select(JobRecord.id, JobRecord.description, JobRecord.func).where(JobRecord.id.in_(ids))
    )
    return {str(r.id): Subject(f"Job: {r.description or r.func}") for r in rows}


# subject_type as recorded -> a loader answering {str(id): Subject} for a set of ids in one query.
_SUBJECT_LOADERS = {
    "Invoice": _invoices,
    "User": _users,
    "Upload": _uploads,
    "Customer": _customers,
    "Partner": _partners,
    "Employee": _employees,
    "Delivery": _deliveries,
    "DeliveryChannel": _channels,
    "MappingProfile": _mappings,
    "JobRecord": _jobs,
}


def subject_labels(keys: Iterable[tuple[str | None, str | None]]) -> dict[tuple[str, str], Subject]:
    """Subjects for (subject_type, subject_id) pairs: one query per type, however many pairs.

    A pair whose object no longer exists (or whose type we do not know) reads "<Type> <id>", unlinked.
    """
    wanted: dict[str, set[str]] = defaultdict(set)
    for subject_type, subject_id in keys:
        if subject_type and subject_id:
            wanted[subject_type].add(str(subject_id))
    found = {}
    for subject_type, ids in wanted.items():
        loader = _SUBJECT_LOADERS.get(subject_type)
        known = loader(ids) if loader else {}
        for subject_id in ids:
            found[(subject_type, subject_id)] = known.get(subject_id) or Subject(
                f"{subject_type} {subject_id}"
            )
    return found


def event_subjects(events: Iterable[AuditEvent]) -> dict[int, Subject]:
    """Each event's subject by event id (events without a subject are left out)."""
    events = list(events)
    labels = subject_labels((e.subject_type, e.subject_id) for e in events)
    return {
        e.id: labels[(e.subject_type, e.subject_id)] if e.subject_id else Subject(e.subject_type)
        for e in events
        if e.subject_type
    }


# --- details as people read them ------------------------------------------------------------------


def _plain(value, limit: int | None = None) -> str:
    if value is None:
        text = "—"
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, list):
        text = ", ".join(_plain(v) for v in value) if value else "none"
    elif isinstance(value, dict):
        text = "; ".join(f"{k}: {_plain(v)}" for k, v in value.items()) if value else "none"
    else:
        text = str(value)
    if limit and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


@dataclass
class Details:
    """An event's details for reading: the changed fields (field, before, after) and the other facts."""

    changes: list[tuple[str, str, str]] | None
    items: list[tuple[str, str]]

    def __bool__(self) -> bool:
        return bool(self.changes) or bool(self.items)


def _diff(details: dict) -> list[tuple[str, object, object]] | None:
    """(key, before, after) for each key that changed, when details has before/after dicts.

    A missing or null side counts as empty: an object created ({} -> values) or a first mapping.
    """
    if "before" not in details or "after" not in details:
        return None
    before, after = details.get("before"), details.get("after")
    if not isinstance(before, dict | None) or not isinstance(after, dict | None):
        return None
    before, after = before or {}, after or {}
    return [
        (key, before.get(key), after.get(key))
        for key in sorted(before.keys() | after.keys())
        if before.get(key) != after.get(key)
    ]


def readable_details(details: dict | None, *, limit: int | None = None) -> Details:
    """`details` as (label, text) pairs and, for an edit, its changed fields; `limit` cuts long texts."""
    details = details or {}
    diff = _diff(details)
    changes = None
    if diff is not None:
        changes = [(key, _plain(old, limit), _plain(new, limit)) for key, old, new in diff]
    items = [
        _money_item(key, value, details.get("currency")) or (key.replace("_", " "), _plain(value, limit))
        for key, value in details.items()
        if diff is None or key not in ("before", "after")
    ]
    return Details(changes, items)


def _money_item(key: str, value, currency) -> tuple[str, str] | None:
    """An amount in minor units ("total_minor": 102000 with "currency": "USD") as people read it:
    ("total", "$1,020.00")."""
    if not key.endswith("_minor") or not isinstance(value, int) or not isinstance(currency, str):
        return None
    try:
        return key.removesuffix("_minor").replace("_", " "), format_money(value, currency)
    except (ValueError, LookupError):
        return None


# --- filters --------------------------------------------------------------------------------------


def _date(value: str, name: str) -> date | None:
    """A `from` / `to` filter: None when empty; a malformed or out-of-range date answers 400."""
    return parse_date(value, label=f"date “{name}”") if value else None


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def filter_values(args) -> dict:
    """The filters from a query string (`request.args`), each stripped; absent ones are ""."""
    return {name: (args.get(name) or "").strip() for name in FILTERS}


def _invoice_numbered(number: str) -> Invoice | None:
    """The invoice with this number, exactly or else ignoring case (numbers are unique)."""
    invoice = db.session.scalar(select(Invoice).where(Invoice.number == number))
    if invoice is None:
        invoice = db.session.scalar(
            select(Invoice).where(func.lower(Invoice.number) == number.lower()).limit(1)
        )
    return invoice


def _uploads_named(name: str, *, exact: bool = False) -> list[int]:
    """Ids of the uploads of that file name (ignoring case); unless `exact`, else those containing it."""
    named = db.session.scalars(select(Upload.id).where(func.lower(Upload.filename) == name.lower())).all()
    if named or exact:
        return list(named)
    return list(
        db.session.scalars(
            select(Upload.id).where(func.lower(Upload.filename).like(_like(name), escape="\\"))
        )
    )


def _user_with_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.email) == email.lower()))


def where_clauses(f: dict) -> list:
    """WHERE clauses for the filters; each uses an index except `q`, a scan over the filtered range.

    `invoice`, `upload` and `user` name an object as people know it (a number, a file name, an
    email); each is resolved to the object first, then matched by id (see audit.about_invoice).
    """
    clauses = []
    if f["actor"]:
        clauses.append(func.lower(AuditEvent.actor_label).like(_like(f["actor"]), escape="\\"))
    if f["action"]:
        clauses.append(AuditEvent.action.startswith(f["action"], autoescape=True))
    if f["subject_type"]:
        clauses.append(AuditEvent.subject_type == f["subject_type"])
    if f["subject_id"]:
        clauses.append(AuditEvent.subject_id == f["subject_id"])
    if f["customer"]:
        code = f["customer"].upper()
        clauses.append(
            AuditEvent.customer_id == select(Customer.id).where(Customer.code == code).scalar_subquery()
        )
    if f["partner"]:
        slug = f["partner"].lower()
        clauses.append(
            AuditEvent.partner_id == select(Partner.id).where(Partner.slug == slug).scalar_subquery()
        )
    if f["invoice"]:
        invoice = _invoice_numbered(f["invoice"])
        clauses.append(audit.about_invoice(invoice) if invoice else false())
    if f["upload"]:
        upload_ids = _uploads_named(f["upload"])
        clauses.append(audit.about_uploads(upload_ids) if upload_ids else false())
    if f["user"]:
        user = _user_with_email(f["user"])
        clauses.append(audit.about_user(user) if user else false())
    if f["hide_reads"]:
        clauses.append(AuditEvent.action.not_in(audit.READ_ONLY_ACTIONS))
    if start := _date(f["from"], "from"):
        clauses.append(AuditEvent.occurred_at >= datetime.combine(start, time.min, UTC))
    if end := _date(f["to"], "to"):
        clauses.append(AuditEvent.occurred_at < datetime.combine(end + timedelta(days=1), time.min, UTC))
    if f["q"]:
        clauses.append(_text_search(f["q"]))
    return clauses


def _text_search(text: str):
    """Events whose actor, action, subject id or details contain `text`, and, when `text` is an
    invoice number, an upload's file name or a user's email, every event about that object too
    (most of an invoice's events do not spell its number)."""
    pattern = _like(text)
    matches = [
        func.lower(column).like(pattern, escape="\\")
        for column in (
            AuditEvent.actor_label,
            AuditEvent.action,
            AuditEvent.subject_id,
            cast(AuditEvent.details, String),
        )
    ]
    if invoice := _invoice_numbered(text):
        matches.append(audit.about_invoice(invoice))
    if upload_ids := _uploads_named(text, exact=True):
        matches.append(audit.about_uploads(upload_ids))
    if user := _user_with_email(text):
        matches.append(audit.about_user(user))
    return or_(*matches)
