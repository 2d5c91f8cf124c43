"""Invoice page pieces shared by the customer and admin blueprints: the filtered line table,
the per-employee lines, and document downloads. Each takes an invoice already checked by the caller."""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import threading
import time

from cachetools import TTLCache
from flask import Response, abort, current_app, g, make_response, render_template, request, session, url_for
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup
from sqlalchemy import func, select

from portal import jobs
from portal.core import audit
from portal.delivery import delivery_summary
from portal.extensions import db
from portal.invoicing import queries
from portal.invoicing.disputes import open_disputes
from portal.models import (
    Dispute,
    DisputeStatus,
    Invoice,
    InvoiceDocument,
    InvoiceStatus,
    JobRecord,
    JobStatus,
    LineItem,
    Partner,
)
from portal.web import send_stored
from portal.web.inputs import id_arg, page_arg
from portal.web.locale import viewer_locale, viewer_timezone
from portal.web.pagination import paginate_rows

LINES_PAGE = 100
LINE_SORTS = [
    ("employee", "Employee"),
    ("date", "Service date"),
    ("amount", "Amount, lowest first"),
    ("-amount", "Amount, highest first"),
]


def line_filters() -> dict:
    """The line table's filters from the query string (search, partner, expense type)."""
    return {
        "q": request.args.get("q", "").strip()[:100],
        "partner_id": id_arg("partner"),
        "expense_type": request.args.get("type", "").strip()[:16],
    }


def line_args(filters: dict, sort: str, page: int = 1) -> dict:
    """The query parameters that reproduce a filtered, sorted page of lines (defaults left out), so
    the page URL, the pager, the dispute forms and their redirects all carry the same view."""
    args = {
        "q": filters["q"],
        "partner": filters["partner_id"],
        "type": filters["expense_type"],
        "sort": sort if sort != LINE_SORTS[0][0] else None,
        "page": page if page > 1 else None,
    }
    return {key: value for key, value in args.items() if value}


def requested_sort() -> str:
    sort = request.args.get("sort", LINE_SORTS[0][0])
    return sort if sort in dict(LINE_SORTS) else LINE_SORTS[0][0]


def requested_view_args() -> dict:
    """The view the query string asks for, as line_args (for a redirect back to the same view)."""
    return line_args(line_filters(), requested_sort(), page_arg())


def lines_context(invoice: Invoice, *, can_dispute: bool, page_endpoint: str, endpoint: str) -> dict:
    """What the line table shows for the query string's filters, sort and page.

    `page_endpoint` is the full invoice page (the URL a reload or a shared link uses), `endpoint`
    the one answering the table alone to htmx.
    """
    filters = line_filters()
    sort = requested_sort()
    lines = paginate_rows(
        lambda limit, offset: queries.invoice_lines(
            invoice, limit=limit, offset=offset, sort=sort, **filters
        ),
        total=queries.count_lines(invoice, sort=sort, **filters),
        per_page=LINES_PAGE,
        clamp=True,
    )
    page = lines.page
    by_dimension = queries.totals(invoice)
    return {
        "lines": lines.items,
        "line_total": lines.total,
        "page": page,
        "pages": lines.pages,
        "sort": sort,
        "sorts": LINE_SORTS,
        "filters": filters,
        "filtered": bool(filters["q"] or filters["partner_id"] or filters["expense_type"]),
        "view_args": line_args(filters, sort, page),
        "filter_args": line_args(filters, sort),
        "partners": db.session.scalars(
            select(Partner).where(Partner.id.in_([int(t.key) for t in by_dimension["partner"]]))
        ).all(),
        "expense_types": [t.key for t in by_dimension["expense_type"]],
        "disputes": open_disputes(invoice),
        "can_dispute": can_dispute and invoice.status == InvoiceStatus.PENDING_APPROVAL,
        "page_endpoint": page_endpoint,
        "endpoint": endpoint,
        "dispute_errors": {},
    }


# The rendered line table of one view (invoice, filters, sort, page) is the same for every viewer of
# that view who shares a role, a locale and a zone, but for the CSRF token in its dispute forms: it is
# kept per process for a minute, rendered with a stand-in where the token goes, and each answer puts
# the viewer's own token there. The key holds everything else the table shows that can change while
# an invoice waits (its status, its disputes and their comments); an employee or partner renamed
# meanwhile shows within the minute. Bounded by the size of the kept HTML.
TABLE_TTL_SECONDS = 60
TABLE_CACHE_CHARS = 16_000_000
_CSRF_SLOT = "csrf-slot-" + secrets.token_hex(16)
_table_lock = threading.Lock()


def _table_cache() -> TTLCache:
    cache = current_app.extensions.get("invoice_line_tables")
    if cache is None:
        cache = current_app.extensions.setdefault(
            "invoice_line_tables",
            TTLCache(maxsize=TABLE_CACHE_CHARS, ttl=TABLE_TTL_SECONDS, getsizeof=lambda hit: len(hit[0])),
        )
    return cache


def _view_parts(invoice: Invoice, *, can_dispute: bool, endpoint: str) -> list:
    """What the line table of the query string's view shows, but for who asks: the invoice (id,
    status, revision), its disputes with their comments (a dispute changes a line's row without
    changing the invoice), the query string, the pages it links to, and the locale and zone that
    format its amounts and dates. Read once a request (the ETag and the kept table both ask)."""
    memo = g.setdefault("line_view_parts", {})
    key = (invoice.id, can_dispute, endpoint)
    if key not in memo:
        memo[key] = _read_view_parts(invoice, can_dispute=can_dispute, endpoint=endpoint)
    return memo[key]


def _read_view_parts(invoice: Invoice, *, can_dispute: bool, endpoint: str) -> list:
    disputes = db.session.execute(
        select(Dispute.id, Dispute.line_item_id, Dispute.status, Dispute.comment)
        .where(Dispute.invoice_id == invoice.id)
        .order_by(Dispute.id)
    ).all()
    return [
        invoice.id,
        str(invoice.status),
        invoice.revision,
        [(d.id, d.line_item_id, str(d.status), d.comment) for d in disputes],
        sorted(request.args.items(multi=True)),
        can_dispute,
        endpoint,
        viewer_locale(),
        viewer_timezone(),
    ]


def _digest(parts: list) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:32]


def line_table(
    invoice: Invoice, *, can_dispute: bool, page_endpoint: str, endpoint: str, **extra
) -> tuple[Markup, dict]:
    """The line table (`invoices/_line_table.html`) of the query string's view, and that view's
    arguments (`view_args`). With `extra` (a form's errors to show) it is rendered afresh."""
    if extra:
        context = lines_context(
            invoice, can_dispute=can_dispute, page_endpoint=page_endpoint, endpoint=endpoint
        )
        context.update(extra)
        html = render_template("invoices/_line_table.html", invoice=invoice, **context)
        return Markup(html), context["view_args"]  # noqa: S704 (a rendered, autoescaped template)
    key = _digest(_view_parts(invoice, can_dispute=can_dispute, endpoint=endpoint))
    cache = _table_cache()
    with _table_lock:
        hit = cache.get(key)
    if hit is None:
        context = lines_context(
            invoice, can_dispute=can_dispute, page_endpoint=page_endpoint, endpoint=endpoint
        )
        html = render_template(
            "invoices/_line_table.html", invoice=invoice, csrf_token=lambda: _CSRF_SLOT, **context
        )
        hit = (html, context["view_args"])
        with _table_lock, contextlib.suppress(ValueError):  # ValueError: larger than the whole cache
            cache[key] = hit
    html, view_args = hit
    # A rendered (autoescaped) template; the token is URL-safe text.
    return Markup(html.replace(_CSRF_SLOT, generate_csrf())), view_args  # noqa: S704


def render_lines(
    invoice: Invoice, *, can_dispute: bool, page_endpoint: str, endpoint: str, **extra
) -> Response:
    """The #lines section alone (for htmx). Its answer names the full page URL of the same view
    (HX-Replace-Url), so the address bar, a reload and a shared link show what the table shows.

    A GET carries an ETag (see `lines_etag`): asked again with it, an unchanged table answers 304
    without being rendered.
    """
    etag = (
        lines_etag(invoice, can_dispute=can_dispute, endpoint=endpoint)
        if request.method == "GET" and not extra
        else None
    )
    if etag is not None and etag in request.if_none_match:
        response = Response(status=304)  # the browser shows its copy, with that copy's headers
    else:
        html, view_args = line_table(
            invoice, can_dispute=can_dispute, page_endpoint=page_endpoint, endpoint=endpoint, **extra
        )
        response = make_response(html)
        if request.method == "GET":
            response.headers["HX-Replace-Url"] = page_url(page_endpoint, invoice, view_args)
    if etag is not None:
        response.set_etag(etag)
        response.headers["Cache-Control"] = "private, no-cache"  # kept by the browser, asked again each time
    return response


def lines_etag(invoice: Invoice, *, can_dispute: bool, endpoint: str) -> str:
    """The view's parts (`_view_parts`), the viewer and their CSRF secret with a window of half its
    time limit (the dispute forms carry a token, which must still be accepted when a kept copy is
    shown), as one hash. A renamed employee or partner shows within that window too."""
    generate_csrf()  # the session's secret exists before it is read below, so the hash is stable
    field = current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    window = max(int(current_app.config.get("WTF_CSRF_TIME_LIMIT") or 3600) // 2, 1)
    parts = _view_parts(invoice, can_dispute=can_dispute, endpoint=endpoint)
    return _digest([*parts, current_user.get_id(), session.get(field), int(time.time()) // window])


def page_url(page_endpoint: str, invoice: Invoice, args: dict, anchor: str = "") -> str:
    return url_for(page_endpoint, invoice_id=invoice.id, **args) + (f"#{anchor}" if anchor else "")


def disputed_minor(invoice: Invoice) -> int:
    """The amount of the invoice's lines under an open dispute (what approving the rest leaves out)."""
    return db.session.scalar(
        select(func.coalesce(func.sum(LineItem.amount_minor), 0))
        .join(Dispute, Dispute.line_item_id == LineItem.id)
        .where(Dispute.invoice_id == invoice.id, Dispute.status == DisputeStatus.OPEN)
    )


EMPLOYEE_LINES_SHOWN = 1000


def employee_lines(invoice: Invoice, employee_id: int):
    """One employee's lines for the breakdown; beyond EMPLOYEE_LINES_SHOWN it says how many more."""
    rows = queries.invoice_lines(invoice, limit=EMPLOYEE_LINES_SHOWN, employee_id=employee_id)
    total = (
        queries.count_lines(invoice, employee_id=employee_id)
        if len(rows) == EMPLOYEE_LINES_SHOWN
        else len(rows)
    )
    return render_template("invoices/_employee_lines.html", invoice=invoice, lines=rows, total=total)


RENDER_PHASES = {
    "csv": "writing the CSV",
    "pdf": "laying out the PDF",
    "store": "storing the files",
    "done": "finishing",
}


def render_state(invoice: Invoice, documents: dict[str, InvoiceDocument]) -> dict:
    """Where the approved invoice's PDF and CSV are: ready, being prepared (and which step), or failed.

    From the render job recorded with the approval; its failure is shown, so the page stops waiting.
    """
    if documents or invoice.status not in (InvoiceStatus.APPROVED, InvoiceStatus.DELIVERED):
        return {"state": "ready" if documents else "none"}
    record = db.session.get(JobRecord, invoice.render_job_id) if invoice.render_job_id else None
    if record is not None and record.status == JobStatus.FAILED:
        return {"state": "failed", "error": record.error or "", "job_id": record.id}
    phase = jobs.get_progress(record.id).get("phase") if record is not None else None
    return {
        "state": "preparing",
        "step": RENDER_PHASES.get(phase, "waiting for a worker"),
        # Why it is being tried again ("a failure", "the worker running it stopped"), or None.
        "retrying": record.retry_reason if record is not None else None,
    }


def documents_context(invoice: Invoice) -> dict:
    """What the "Documents and delivery" section shows: files, render progress, deliveries."""
    found = documents(invoice)
    return {
        "documents": found,
        "render": render_state(invoice, found),
        "deliveries": delivery_summary(invoice),
    }


def documents(invoice: Invoice) -> dict[str, InvoiceDocument]:
    return {
        d.kind: d
        for d in db.session.scalars(select(InvoiceDocument).where(InvoiceDocument.invoice_id == invoice.id))
    }


def download(invoice: Invoice, kind: str):
    """Stream a stored deliverable; the same bytes every time (sha256 in the response header)."""
    doc = documents(invoice).get(kind)
    if doc is None:
        abort(404)
    audit.record("invoice.downloaded", subject=invoice, details={"kind": kind, "sha256": doc.sha256})
    db.session.commit()
    mimetype = "application/pdf" if kind == "pdf" else "text/csv"
    return send_stored(
        doc.storage_key,
        filename=f"{invoice.number}.{kind}",
        mimetype=mimetype,
        size=doc.size_bytes,
        sha256=doc.sha256,
    )
