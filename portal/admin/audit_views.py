"""Admin audit pages: the filtered event list (keyset pages), an event's detail with its diff, CSV export.

The chain status shown is the last stored verification; a full walk runs only on "Verify now".
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, time, timedelta

from flask import Response, flash, redirect, render_template, request, stream_with_context, url_for
from sqlalchemy import String, cast, func, or_, select

from portal import audit
from portal.admin import bp
from portal.auth.forms import EmptyForm
from portal.csvsafe import safe_cell
from portal.extensions import db
from portal.models import AuditEvent, Customer, Partner

PAGE_SIZE = 50
FILTERS = ("actor", "action", "subject_type", "subject_id", "customer", "partner", "from", "to", "q")
CSV_COLUMNS = (
    "seq", "occurred_at", "actor", "action", "subject_type", "subject_id",
    "customer_id", "partner_id", "ip", "details", "hash",
)  # fmt: skip


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _filter_values() -> dict:
    return {name: (request.args.get(name) or "").strip() for name in FILTERS}


def _where(f: dict) -> list:
    """WHERE clauses for the filters; each uses an index except `q`, a scan over the filtered range."""
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
    if start := _date(f["from"]):
        clauses.append(AuditEvent.occurred_at >= datetime.combine(start, time.min, UTC))
    if end := _date(f["to"]):
        clauses.append(AuditEvent.occurred_at < datetime.combine(end + timedelta(days=1), time.min, UTC))
    if f["q"]:
        pattern = _like(f["q"])
        clauses.append(
            or_(
                *(
                    func.lower(column).like(pattern, escape="\\")
                    for column in (
                        AuditEvent.actor_label,
                        AuditEvent.action,
                        AuditEvent.subject_id,
                        cast(AuditEvent.details, String),
                    )
                )
            )
        )
    return clauses


@bp.route("/audit")
def audit_events():
    """Audit events, newest first, filtered by the query string; 50 a page, paged by `seq` (keyset).

    `before=<seq>` shows older events, `after=<seq>` newer ones: no OFFSET, so a page deep in a
    million events costs what the first one does.
    """
    f = _filter_values()
    stmt = select(AuditEvent).where(*_where(f))
    before = request.args.get("before", type=int)
    after = request.args.get("after", type=int)
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
        filters=f,
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
        if ok:
            flash(f"Audit chain intact: {count} events verified.", "success")
        else:
            flash(f"Audit chain broken at event {bad['seq']}: {bad['reason']}", "error")
    return redirect(url_for("admin.audit_events"))


def _diff(details: dict) -> list[tuple[str, object, object]] | None:
    """(key, before, after) for each key that changed, when details has before/after dicts."""
    before, after = details.get("before"), details.get("after")
    if not isinstance(before, dict) or not isinstance(after, dict):
        return None
    return [
        (key, before.get(key), after.get(key))
        for key in sorted(before.keys() | after.keys())
        if before.get(key) != after.get(key)
    ]


@bp.route("/audit/<int:event_id>")
def audit_event(event_id: int):
    """One event: who, what, when, its chain fields, and a before/after table or its details JSON."""
    event = db.get_or_404(AuditEvent, event_id)
    details = event.details or {}
    return render_template(
        "audit/admin_detail.html",
        event=event,
        diff=_diff(details),
        details_json=json.dumps(details, indent=2, sort_keys=True, ensure_ascii=False),
    )


@bp.route("/audit.csv")
def audit_export():
    """Every event matching the filters as CSV, newest first, streamed in keyset batches."""
    where = _where(_filter_values())

    def rows():
        buffer = io.StringIO()
        writer = csv.writer(buffer)

        def flush():
            data = buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            return data

        writer.writerow(CSV_COLUMNS)
        yield flush()
        before = None
        while True:
            stmt = select(AuditEvent).where(*where)
            if before is not None:
                stmt = stmt.where(AuditEvent.seq < before)
            batch = db.session.scalars(stmt.order_by(AuditEvent.seq.desc()).limit(1000)).all()
            if not batch:
                return
            for e in batch:
                writer.writerow(
                    [
                        safe_cell(v)
                        for v in (
                            e.seq,
                            e.occurred_at.isoformat(),
                            e.actor_label,
                            e.action,
                            e.subject_type,
                            e.subject_id,
                            e.customer_id,
                            e.partner_id,
                            e.ip,
                            json.dumps(e.details, sort_keys=True, ensure_ascii=False),
                            e.hash,
                        )
                    ]
                )
            before = batch[-1].seq
            for e in batch:
                db.session.expunge(e)  # memory stays bounded however many rows match
            yield flush()

    return Response(
        stream_with_context(rows()),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=audit-events.csv"},
    )
