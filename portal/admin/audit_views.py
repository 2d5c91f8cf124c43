"""Admin audit pages: the filtered event list (keyset pages), an event's detail with its diff, CSV export.

The chain status shown is the last stored verification; a full walk runs only on "Verify now".
Subjects are shown as people name them ("Invoice ACME-2026-11-1", an email), resolved for a whole
page at once, one query per subject type.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from flask import (
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from sqlalchemy import String, cast, false, func, or_, select

from portal.admin import bp
from portal.core import audit
from portal.core.csvsafe import safe_cell
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
from portal.web.forms import EmptyForm
from portal.web.inputs import MAX_SEQ, int_arg, parse_date, parse_id

PAGE_SIZE = 50
FILTERS = (
    "actor", "action", "subject_type", "subject_id", "customer", "partner", "invoice", "upload", "user",
    "from", "to", "q", "hide_reads",
)  # fmt: skip
# The first eleven columns are those of the first export, in their order, for scripts reading it.
CSV_COLUMNS = (
    "seq", "occurred_at", "actor", "action", "subject_type", "subject_id",
    "customer_id", "partner_id", "ip", "details", "hash", "subject",
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


def _filter_values() -> dict:
    return {name: (request.args.get(name) or "").strip() for name in FILTERS}


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


def _where(f: dict) -> list:
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


# --- pages ----------------------------------------------------------------------------------------


@bp.route("/audit")
def audit_events():
    """Audit events, newest first, filtered by the query string; 50 a page, paged by `seq` (keyset).

    `before=<seq>` shows older events, `after=<seq>` newer ones: no OFFSET, so a page deep in a
    million events costs what the first one does.
    """
    f = _filter_values()
    stmt = select(AuditEvent).where(*_where(f))
    before = int_arg("before", minimum=0, maximum=MAX_SEQ)
    after = int_arg("after", minimum=0, maximum=MAX_SEQ)
    if after is not None:
        rows = db.session.scalars(
            stmt.where(AuditEvent.seq > after).order_by(AuditEvent.seq).limit(PAGE_SIZE + 1)
        ).all()
        has_newer = len(rows) > PAGE_SIZE
        events = list(reversed(rows[:PAGE_SIZE]))
        has_older = True
    else:
        if before is not None:
            stmt = stmt.where(AuditEvent.seq < before)
        rows = db.session.scalars(stmt.order_by(AuditEvent.seq.desc()).limit(PAGE_SIZE + 1)).all()
        has_older = len(rows) > PAGE_SIZE
        events = rows[:PAGE_SIZE]
        has_newer = before is not None
    params = {k: v for k, v in f.items() if v}
    older_url = (
        url_for("admin.audit_events", **params, before=events[-1].seq) if events and has_older else None
    )
    newer_url = url_for("admin.audit_events", **params, after=events[0].seq) if events and has_newer else None
    return render_template(
        "audit/admin_list.html",
        events=events,
        subjects=event_subjects(events),
        details={e.id: readable_details(e.details, limit=80) for e in events},
        filters=f,
        filtered=bool(params),
        older_url=older_url,
        newer_url=newer_url,
        csv_url=url_for("admin.audit_export", **params),
        verification=audit.last_verification(),
        form=EmptyForm(),
    )


@bp.route("/audit/verify", methods=["POST"])
def audit_verify():
    """Walk the whole chain now and store the result shown at the top of the audit page."""
    form = EmptyForm()
    if form.validate_on_submit():
        ok, count, bad = audit.verify_chain()
        audit.remember_verification(ok, count, bad)
        db.session.commit()  # the signed anchor of an intact chain
        if ok:
            flash(f"Audit chain intact: {count} events verified.", "success")
        else:
            flash(f"Audit chain broken at event {bad['seq']}: {bad['reason']}", "error")
    return redirect(url_for("admin.audit_events"))


@bp.route("/audit/<id:event_id>")
def audit_event(event_id: int):
    """One event: who, what, when, about what (linked), its chain fields, its changes and details."""
    event = db.get_or_404(AuditEvent, event_id)
    labels = subject_labels(
        [
            (event.subject_type, event.subject_id),
            ("Customer", str(event.customer_id) if event.customer_id else None),
            ("Partner", str(event.partner_id) if event.partner_id else None),
            ("User", str(event.actor_id) if event.actor_id else None),
        ]
    )
    return render_template(
        "audit/admin_detail.html",
        event=event,
        subject=event_subjects([event]).get(event.id),
        customer=labels.get(("Customer", str(event.customer_id))),
        partner=labels.get(("Partner", str(event.partner_id))),
        actor=labels.get(("User", str(event.actor_id))),
        details=readable_details(event.details),
    )


EXPORT_BATCH = 500
EXPORT_CHUNK_CHARS = 64 * 1024
_EXPORT_COLUMNS = (
    AuditEvent.id, AuditEvent.seq, AuditEvent.occurred_at, AuditEvent.actor_label, AuditEvent.action,
    AuditEvent.subject_type, AuditEvent.subject_id, AuditEvent.customer_id, AuditEvent.partner_id,
    AuditEvent.ip, AuditEvent.details, AuditEvent.hash,
)  # fmt: skip


def _export_batch(where: list, before: int | None) -> list:
    """The next EXPORT_BATCH events (plain rows, newest first) below `seq` `before`."""
    stmt = select(*_EXPORT_COLUMNS).where(*where)
    if before is not None:
        stmt = stmt.where(AuditEvent.seq < before)
    return db.session.execute(stmt.order_by(AuditEvent.seq.desc()).limit(EXPORT_BATCH)).all()


def _export_chunks(rows: list) -> Iterator[str]:
    """CSV text of rows, in chunks of about EXPORT_CHUNK_CHARS (one huge event is one chunk)."""
    subjects = event_subjects(rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for e in rows:
        subject = subjects.get(e.id)
        details = json.dumps(e.details, sort_keys=True, ensure_ascii=False, default=str)
        values = (
            e.seq, e.occurred_at.isoformat(), e.actor_label, e.action, e.subject_type, e.subject_id,
            e.customer_id, e.partner_id, e.ip, details, e.hash, subject.label if subject else "",
        )  # fmt: skip
        writer.writerow([safe_cell(v) for v in values])
        if buffer.tell() >= EXPORT_CHUNK_CHARS:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()


def _utf8(text: str) -> bytes:
    # A lone surrogate (possible in JSON details stored by SQLite) cannot be UTF-8: written as its
    # escape rather than failing the encoding in the middle of the download.
    return text.encode("utf-8", "backslashreplace")


@bp.route("/audit.csv")
def audit_export():
    """Every event matching the filters as CSV, newest first, streamed in keyset batches.

    Everything that can be refused or fail on a request's input happens before the answer starts:
    the filters are parsed (a bad date answers 400) and the first batch is read and written here, so
    a failing query answers an error page, never a 200 cut off after its header row. Later batches
    are plain rows read by `seq` (no ORM objects pile up), each in its own short read; if one still
    fails (the database went away), the error is logged and the response is aborted, so the client
    sees a failed download rather than a file that merely looks complete.
    """
    where = _where(_filter_values())
    header = io.StringIO()
    csv.writer(header).writerow(CSV_COLUMNS)
    first = _export_batch(where, None)
    head = [header.getvalue(), *_export_chunks(first)]

    def rows():
        yield from map(_utf8, head)
        batch, exported = first, len(first)
        try:
            while len(batch) == EXPORT_BATCH:
                batch = _export_batch(where, batch[-1].seq)
                # The generator's own session: end its read, so no transaction stays open while
                # the client downloads what was read.
                db.session.rollback()
                for chunk in _export_chunks(batch):
                    yield _utf8(chunk)
                exported += len(batch)
        except Exception:
            current_app.logger.exception("Audit CSV export failed after %d events", exported)
            raise

    return Response(
        stream_with_context(rows()),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=audit-events.csv"},
    )
