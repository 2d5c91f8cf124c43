"""Building invoices: attach a customer's unbilled lines to one invoice per currency, set-based.

Lines are attached by one UPDATE per invoice that only touches lines not attached yet, so a line can
never sit on two invoices; totals come from SQL aggregation and are stored with the invoice. Running
a build twice, or on two workers at once, creates nothing twice: the database holds one invoice per
(customer, period, currency, revision) and one run per (customer, period).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from sqlalchemy import delete, exists, select, text, update
from sqlalchemy.exc import IntegrityError

from portal import jobs
from portal.core import audit
from portal.extensions import db
from portal.invoicing.notify import notify_awaiting_approval
from portal.invoicing.periods import Period, due_period
from portal.models import Customer, Dispute, DisputeStatus, Invoice, InvoiceRun, InvoiceStatus, LineItem, User
from portal.models.base import utcnow


@dataclass
class BuildResult:
    customer_code: str
    period: str
    created: list[str] = field(default_factory=list)  # invoice numbers
    message: str = ""

    def as_dict(self) -> dict:
        return {
            "customer": self.customer_code,
            "period": self.period,
            "created": self.created,
            "message": self.message,
        }


def not_under_open_dispute():
    """Lines held by an open dispute are never billed until an admin resolves the dispute."""
    return ~exists().where(Dispute.line_item_id == LineItem.id, Dispute.status == DisputeStatus.OPEN)


def _unbilled(customer_id: int, period: Period):
    return (
        LineItem.customer_id == customer_id,
        LineItem.invoice_id.is_(None),
        LineItem.rejected_at.is_(None),
        LineItem.service_date <= period.end,
        not_under_open_dispute(),
    )


# Every statement below reads an invoice's lines by (customer_id, invoice_id), not by invoice_id
# alone: a line only ever sits on an invoice of its own customer (build attaches by customer, a
# revision moves lines between invoices of one customer), so the result is the same, and the lookup
# uses the index ix_line_items_customer_invoice instead of scanning every line of every customer.
_SNAPSHOT = text(
    "INSERT INTO invoice_lines (invoice_id, line_item_id, is_adjustment)"
    " SELECT :invoice_id, li.id, (li.service_date < :start) FROM line_items li"
    " WHERE li.customer_id = :customer_id AND li.invoice_id = :invoice_id"
)
# The three breakdowns in one statement (one round trip instead of three).
_TOTALS = text(
    "INSERT INTO invoice_totals (invoice_id, dimension, key, label, amount_minor, line_count)"
    " SELECT :invoice_id, 'employee', CAST(e.id AS VARCHAR(64)), e.name || ' (' || e.external_id || ')',"
    " SUM(li.amount_minor), COUNT(*) FROM line_items li JOIN employees e ON e.id = li.employee_id"
    " WHERE li.customer_id = :customer_id AND li.invoice_id = :invoice_id"
    " GROUP BY e.id, e.name, e.external_id"
    " UNION ALL"
    " SELECT :invoice_id, 'partner', CAST(p.id AS VARCHAR(64)), p.name,"
    " SUM(li.amount_minor), COUNT(*) FROM line_items li JOIN partners p ON p.id = li.partner_id"
    " WHERE li.customer_id = :customer_id AND li.invoice_id = :invoice_id GROUP BY p.id, p.name"
    " UNION ALL"
    " SELECT :invoice_id, 'expense_type', li.expense_type, li.expense_type,"
    " SUM(li.amount_minor), COUNT(*) FROM line_items li"
    " WHERE li.customer_id = :customer_id AND li.invoice_id = :invoice_id GROUP BY li.expense_type"
)
_SUMS = text(
    "SELECT COALESCE(SUM(li.amount_minor), 0), COUNT(li.id),"
    " COALESCE(SUM(CASE WHEN li.service_date < :start THEN li.amount_minor ELSE 0 END), 0),"
    " COALESCE(SUM(CASE WHEN li.service_date < :start THEN 1 ELSE 0 END), 0),"
    " COUNT(DISTINCT li.employee_id), COUNT(DISTINCT li.partner_id) FROM line_items li"
    " WHERE li.customer_id = :customer_id AND li.invoice_id = :invoice_id"
)


def store_totals(invoice: Invoice) -> None:
    """Snapshot the invoice's lines and compute every stored total in SQL (no Python loops over lines)."""
    params = {"invoice_id": invoice.id, "customer_id": invoice.customer_id, "start": invoice.period_start}
    db.session.execute(_SNAPSHOT, params)
    db.session.execute(_TOTALS, params)
    row = db.session.execute(_SUMS, params).one()
    (
        invoice.total_minor,
        invoice.line_count,
        invoice.adjustment_minor,
        invoice.adjustment_count,
        invoice.employee_count,
        invoice.partner_count,
    ) = (int(v) for v in row)


def invoice_number(customer: Customer, period: Period, sequence: int, revision: int = 1) -> str:
    return with_suffixes(f"{customer.code}-{period.key}-{sequence}", revision=revision)


# An invoice number is CODE-YYYY-MM-SEQ, then -S<n> on a supplemental invoice, then -R<n> from the
# second revision on. Only these trailing suffixes are ever parsed back, so a customer code may
# contain anything.
_SUFFIXES = re.compile(r"(-S\d+)?(-R\d+)?$")


def with_suffixes(base: str, *, supplement: int = 0, revision: int = 1) -> str:
    """`base` with the supplement and revision suffixes an invoice of that kind carries."""
    return base + (f"-S{supplement}" if supplement else "") + (f"-R{revision}" if revision > 1 else "")


def base_number(number: str) -> str:
    """The number of the period's regular first revision: `number` without -S<n> and -R<n>."""
    return _SUFFIXES.sub("", number, count=1)


def build_invoices(customer: Customer, period: Period, *, actor: User | None = None) -> BuildResult:
    """Create the customer's invoices for `period` (one per currency) from its unbilled lines.

    Lines dated before the period (late arrivals) are included as prior-period adjustments; lines
    dated after it wait. A currency already invoiced for the period is left alone: its late lines go
    onto the next period's invoice. The caller commits.
    """
    result = BuildResult(customer.code, period.key)
    currencies = db.session.scalars(
        select(LineItem.currency)
        .where(*_unbilled(customer.id, period))
        .distinct()
        .order_by(LineItem.currency)
    ).all()
    if not currencies:
        result.message = f"no unbilled line items up to {period.end.isoformat()}: no invoice"
        return result
    invoiced = db.session.execute(
        select(Invoice.currency, Invoice.revision).where(
            Invoice.customer_id == customer.id, Invoice.period_start == period.start
        )
    ).all()
    existing = {currency for currency, _ in invoiced}
    sequence = sum(1 for _, revision in invoiced if revision == 1)
    skipped = []
    for currency in currencies:
        if currency in existing:
            skipped.append(currency)
            continue
        sequence += 1
        invoice = Invoice(
            number=invoice_number(customer, period, sequence),
            customer_id=customer.id,
            period_start=period.start,
            period_end=period.end,
            currency=currency,
            revision=1,
            status=InvoiceStatus.PENDING_APPROVAL,
            created_by_id=actor.id if actor else None,
        )
        db.session.add(invoice)
        db.session.flush()
        attached = db.session.execute(
            update(LineItem)
            .where(*_unbilled(customer.id, period), LineItem.currency == currency)
            .values(invoice_id=invoice.id)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not attached:  # another build took the lines between our two statements
            db.session.execute(delete(Invoice).where(Invoice.id == invoice.id))
            continue
        store_totals(invoice)
        audit.record(
            "invoice.generated",
            subject=invoice,
            actor=actor,
            details={
                "number": invoice.number,
                "period": period.key,
                "currency": currency,
                "total_minor": invoice.total_minor,
                "lines": invoice.line_count,
                "adjustments": invoice.adjustment_count,
                "credit_note": invoice.is_credit_note,
            },
        )
        jobs.enqueue(notify_awaiting_approval, invoice.id, description=f"Notify {invoice.number}")
        result.created.append(invoice.number)
    parts = []
    if result.created:
        parts.append(f"created {', '.join(result.created)}")
    if skipped:
        parts.append(
            f"{', '.join(skipped)} already invoiced for {period.key}; later lines wait for the next period"
        )
    result.message = "; ".join(parts) or "nothing to invoice"
    return result


def run_period(customer_id: int, period_key: str, actor_id: int | None = None, force: bool = False) -> dict:
    """The build job: record the run for (customer, period) once, then build; idempotent.

    Without `force` (the scheduler), a period already run is left alone. With `force` (an admin's
    "generate now" or the CLI), the build runs again, which creates only what is missing.
    """
    customer = db.session.get(Customer, customer_id)
    period = Period.parse(period_key)
    actor = db.session.get(User, actor_id) if actor_id else None
    run = db.session.scalar(
        select(InvoiceRun).where(
            InvoiceRun.customer_id == customer.id, InvoiceRun.period_start == period.start
        )
    )
    if run is not None and not force:
        return {"customer": customer.code, "period": period.key, "created": [], "message": "already run"}
    if run is None:
        try:
            with db.session.begin_nested():
                run = InvoiceRun(customer_id=customer.id, period_start=period.start)
                db.session.add(run)
        except IntegrityError:  # a concurrent run of the same period won
            if not force:
                return {
                    "customer": customer.code,
                    "period": period.key,
                    "created": [],
                    "message": "already run",
                }
            run = db.session.scalar(
                select(InvoiceRun).where(
                    InvoiceRun.customer_id == customer.id, InvoiceRun.period_start == period.start
                )
            )
    try:
        result = build_invoices(customer, period, actor=actor)
    except IntegrityError:
        db.session.rollback()
        return {
            "customer": customer.code,
            "period": period.key,
            "created": [],
            "message": "built concurrently",
        }
    run.ran_at = utcnow()
    run.message = result.message[:500]
    audit.record(
        "invoice.run",
        subject=customer,
        subject_type="Customer",
        customer_id=customer.id,
        actor=actor,
        details=result.as_dict(),
    )
    db.session.commit()
    return result.as_dict()


def due_customers(
    *, now: dt.datetime | None = None, today: dt.date | None = None
) -> list[tuple[Customer, Period]]:
    """Customers whose invoice day has come (in their time zone) and whose period was not run yet.

    `today` pretends every customer's local date is that day (the CLI's --date).
    """
    now = now or utcnow()
    candidates = []
    for customer in db.session.scalars(select(Customer).where(Customer.invoicing_enabled.is_(True))):
        if today is not None:
            period = Period.of(today).previous if today.day >= customer.invoice_day else None
        else:
            period = due_period(now, customer.timezone, customer.invoice_day)
        if period is not None:
            candidates.append((customer, period))
    if not candidates:
        return []
    done = set(
        db.session.execute(
            select(InvoiceRun.customer_id, InvoiceRun.period_start).where(
                InvoiceRun.customer_id.in_([c.id for c, _ in candidates])
            )
        ).all()
    )
    return [(c, p) for c, p in candidates if (c.id, p.start) not in done]


def enqueue_due(*, now: dt.datetime | None = None) -> int:
    """The scheduler's job: enqueue one build per due customer; return how many."""
    due = due_customers(now=now)
    for customer, period in due:
        jobs.enqueue(
            run_period,
            customer.id,
            period.key,
            queue="invoices",
            description=f"Invoice {customer.code} {period.key}",
        )
    db.session.commit()
    return len(due)
