"""Admin audit pages: the filtered event list (keyset pages), an event's detail with its diff, CSV export.

The chain status shown is the last stored verification; a full walk runs only on "Verify now".
Subjects are shown as people name them ("Invoice ACME-2026-11-1", an email), resolved for a whole
page at once by `audit_query`, which also turns the filters into WHERE clauses.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

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
from sqlalchemy import select

from portal.admin import bp
from portal.admin.audit_query import (
    event_subjects,
    filter_values,
    readable_details,
    subject_labels,
    where_clauses,
)
from portal.core import audit, audit_chain
from portal.core.csvsafe import safe_cell
from portal.extensions import db
from portal.models import AuditEvent
from portal.web.forms import EmptyForm
from portal.web.inputs import MAX_SEQ, int_arg

PAGE_SIZE = 50
# The first eleven columns are those of the first export, in their order, for scripts reading it.
CSV_COLUMNS = (
    "seq", "occurred_at", "actor", "action", "subject_type", "subject_id",
    "customer_id", "partner_id", "ip", "details", "hash", "subject",
)  # fmt: skip


# --- pages ----------------------------------------------------------------------------------------


@bp.route("/audit")
def audit_events():
    """Audit events, newest first, filtered by the query string; 50 a page, paged by `seq` (keyset).

    `before=<seq>` shows older events, `after=<seq>` newer ones: no OFFSET, so a page deep in a
    million events costs what the first one does.
    """
    audit.absorb_views()  # page views recorded beside the chain are listed like any event
    f = filter_values(request.args)
    stmt = select(AuditEvent).where(*where_clauses(f))
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
        verification=audit_chain.last_verification(),
        form=EmptyForm(),
    )


@bp.route("/audit/verify", methods=["POST"])
def audit_verify():
    """Walk the whole chain now and store the result shown at the top of the audit page."""
    form = EmptyForm()
    if form.validate_on_submit():
        ok, count, bad = audit_chain.verify_chain()
        audit_chain.remember_verification(ok, count, bad)
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
    audit.absorb_views()
    where = where_clauses(filter_values(request.args))
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
