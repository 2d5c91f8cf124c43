"""Admin overview figures: what needs attention, line items per month, invoices and deliveries by
status, approval latency.

Every figure is one aggregate query; charts are inline SVG bars with a table of the same numbers.
"""

from __future__ import annotations

import statistics
from datetime import date, timedelta

from flask import redirect, url_for
from sqlalchemy import func, select

from portal.admin import bp
from portal.extensions import db
from portal.models import (
    Delivery,
    DeliveryStatus,
    Dispute,
    DisputeStatus,
    Invoice,
    InvoiceStatus,
    JobRecord,
    JobStatus,
    LineItem,
    Upload,
    UploadStatus,
)
from portal.models.base import utcnow

MONTHS = 12
LATENCY_DAYS = 90


def _month_key(column):
    """'YYYY-MM' of a UTC timestamp column, on SQLite (naive UTC text) and PostgreSQL (timestamptz)."""
    if db.engine.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM")
    return func.strftime("%Y-%m", column)


def _last_months(today: date, n: int = MONTHS) -> list[date]:
    first, months = today.replace(day=1), []
    for _ in range(n):
        months.append(first)
        first = (first - timedelta(days=1)).replace(day=1)
    return months[::-1]


def line_items_per_month(today: date) -> list[tuple[str, int]]:
    months = _last_months(today)
    key = _month_key(LineItem.created_at)
    since = utcnow().replace(
        year=months[0].year, month=months[0].month, day=1, hour=0, minute=0, second=0, microsecond=0
    )
    counts = dict(
        db.session.execute(
            select(key, func.count(LineItem.id)).where(LineItem.created_at >= since).group_by(key)
        ).all()
    )
    return [(m.strftime("%b %Y"), counts.get(m.strftime("%Y-%m"), 0)) for m in months]


def _counts_by(column, enum_cls, *where) -> list[tuple[str, int]]:
    found = dict(db.session.execute(select(column, func.count()).where(*where).group_by(column)).all())
    return [(member.value.replace("_", " "), found.get(member, 0)) for member in enum_cls]


def approval_latency(now) -> dict:
    """Hours from an invoice's creation to its approval or denial, for decisions in the last 90 days."""
    rows = db.session.execute(
        select(Invoice.created_at, Invoice.decided_at).where(
            Invoice.decided_at.is_not(None), Invoice.decided_at >= now - timedelta(days=LATENCY_DAYS)
        )
    ).all()
    hours = [(decided - created).total_seconds() / 3600 for created, decided in rows]
    if not hours:
        return {"count": 0, "average": None, "median": None}
    return {"count": len(hours), "average": statistics.fmean(hours), "median": statistics.median(hours)}


def chart(title: str, rows: list[tuple[str, int]], unit: str) -> dict:
    return {"title": title, "rows": rows, "unit": unit, "max": max((v for _, v in rows), default=0)}


def overview_figures() -> dict:
    """What the admin overview shows besides the activity feed: what needs attention, the charts,
    approval latency. Each figure is one aggregate query."""
    now = utcnow()
    count = lambda column, *where: db.session.scalar(select(func.count(column)).where(*where))  # noqa: E731
    return {
        "attention": {
            "awaiting_approval": count(Invoice.id, Invoice.status == InvoiceStatus.PENDING_APPROVAL),
            "open_disputes": count(Dispute.id, Dispute.status == DisputeStatus.OPEN),
            "failed_deliveries": count(Delivery.id, Delivery.status == DeliveryStatus.FAILED),
            "failed_jobs": count(JobRecord.id, JobRecord.status == JobStatus.FAILED),
            "uploads_to_review": count(
                Upload.id, Upload.status.in_((UploadStatus.NEEDS_REVIEW, UploadStatus.NEEDS_MAPPING))
            ),
        },
        "charts": [
            chart("Line items received per month", line_items_per_month(now.date()), "line items"),
            chart("Invoices by status", _counts_by(Invoice.status, InvoiceStatus), "invoices"),
            chart("Deliveries by status", _counts_by(Delivery.status, DeliveryStatus), "deliveries"),
        ],
        "latency": approval_latency(now),
        "latency_days": LATENCY_DAYS,
    }


@bp.route("/dashboard")
def dashboard():
    """The dashboard became part of the overview; old bookmarks land there."""
    return redirect(url_for("admin.index"), 301)
