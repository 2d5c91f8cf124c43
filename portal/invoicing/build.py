"""Building invoices: attach customers' unbilled lines to one invoice per currency, set-based.

A build covers a chunk of customers (the hourly run's chunks of CHUNK_SIZE, or one customer for
"generate now") in one transaction of a few statements, whatever its size: the invoices from one
multi-row INSERT, one UPDATE attaching every line (only lines not attached yet, so a line can never
sit on two invoices), one snapshot INSERT, totals by GROUP BY, the audit events in one chained
INSERT and the notification jobs in one. Running a build twice, or on two workers at once, creates
nothing twice: the database holds one invoice per (customer, period, currency, revision) and one run
per (customer, period), and a chunk that fails rolls back alone and is built again."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from sqlalchemy import bindparam, case, exists, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError

from portal import jobs
from portal.core import audit
from portal.extensions import db
from portal.invoicing.notify import notify_awaiting_approval
from portal.invoicing.periods import Period, due_period
from portal.models import (
    Customer,
    Dispute,
    DisputeStatus,
    Invoice,
    InvoiceLine,
    InvoiceRun,
    InvoiceStatus,
    LineItem,
    User,
)
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


def _unbilled_lines(period: Period):
    return (
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


# The build of a chunk: set-based statements over every new invoice of the chunk at once, each
# reading lines by (customer_id, invoice_id) like the statements above.
_CHUNK_SNAPSHOT = text(
    "INSERT INTO invoice_lines (invoice_id, line_item_id, is_adjustment)"
    " SELECT i.id, li.id, (li.service_date < i.period_start) FROM invoices i"
    " JOIN line_items li ON li.customer_id = i.customer_id AND li.invoice_id = i.id"
    " WHERE i.id IN :ids"
).bindparams(bindparam("ids", expanding=True))
# The totals of every invoice of the chunk (the three breakdowns, then the invoice's own sums) from
# one read of their lines, `l`: a CTE used several times is computed once (PostgreSQL materializes
# it). On PostgreSQL both writes are one statement (the breakdowns' INSERT a data-modifying CTE); on
# SQLite, two, each with its own `l`.
_CHUNK_LINES = (
    "SELECT i.id AS invoice_id, li.employee_id, li.partner_id, li.expense_type, li.amount_minor,"
    " CASE WHEN li.service_date < i.period_start THEN 1 ELSE 0 END AS adj"
    " FROM invoices i JOIN line_items li ON li.customer_id = i.customer_id AND li.invoice_id = i.id"
    " WHERE i.id IN :ids"
)
_INSERT_BREAKDOWNS = (
    "INSERT INTO invoice_totals (invoice_id, dimension, key, label, amount_minor, line_count)"
    " SELECT l.invoice_id, 'employee', CAST(e.id AS VARCHAR(64)), e.name || ' (' || e.external_id || ')',"
    " SUM(l.amount_minor), COUNT(*) FROM l JOIN employees e ON e.id = l.employee_id"
    " GROUP BY l.invoice_id, e.id, e.name, e.external_id"
    " UNION ALL"
    " SELECT l.invoice_id, 'partner', CAST(p.id AS VARCHAR(64)), p.name, SUM(l.amount_minor), COUNT(*)"
    " FROM l JOIN partners p ON p.id = l.partner_id GROUP BY l.invoice_id, p.id, p.name"
    " UNION ALL"
    " SELECT l.invoice_id, 'expense_type', l.expense_type, l.expense_type, SUM(l.amount_minor), COUNT(*)"
    " FROM l GROUP BY l.invoice_id, l.expense_type"
)
_CHUNK_SUMS_SELECT = (
    "SELECT l.invoice_id, SUM(l.amount_minor) AS total, COUNT(*) AS lines,"
    " SUM(CASE WHEN l.adj = 1 THEN l.amount_minor ELSE 0 END) AS adj, SUM(l.adj) AS adj_lines,"
    " COUNT(DISTINCT l.employee_id) AS employees, COUNT(DISTINCT l.partner_id) AS partners"
    " FROM l GROUP BY l.invoice_id"
)
_UPDATE_SUMS = (
    "UPDATE invoices SET total_minor = s.total, line_count = s.lines, adjustment_minor = s.adj,"
    " adjustment_count = s.adj_lines, employee_count = s.employees, partner_count = s.partners"
)
_RETURNING_SUMS = (
    " WHERE invoices.id = s.invoice_id"
    " RETURNING invoices.id, invoices.total_minor, invoices.line_count, invoices.adjustment_count"
)
_CHUNK_TOTALS = text(f"WITH l AS ({_CHUNK_LINES}) {_INSERT_BREAKDOWNS}").bindparams(
    bindparam("ids", expanding=True)
)
_CHUNK_SUMS = text(
    f"{_UPDATE_SUMS} FROM (WITH l AS ({_CHUNK_LINES}) {_CHUNK_SUMS_SELECT}) s{_RETURNING_SUMS}"
).bindparams(bindparam("ids", expanding=True))
_CHUNK_TOTALS_AND_SUMS = text(
    f"WITH l AS ({_CHUNK_LINES}), breakdowns AS ({_INSERT_BREAKDOWNS} RETURNING 1)"
    f" {_UPDATE_SUMS} FROM ({_CHUNK_SUMS_SELECT}) s{_RETURNING_SUMS}"
).bindparams(bindparam("ids", expanding=True))
_DROP_EMPTY = text(
    "DELETE FROM invoices WHERE id IN :ids AND NOT EXISTS (SELECT 1 FROM line_items li"
    " WHERE li.customer_id = invoices.customer_id AND li.invoice_id = invoices.id) RETURNING id"
).bindparams(bindparam("ids", expanding=True))

# Customers per chunk of the hourly run: one transaction each, so a failure loses one chunk's work
# and locks stay short, while each statement still covers thousands of lines.
CHUNK_SIZE = 500


def _is_postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _insert_ignoring_conflicts(model):
    """INSERT ... ON CONFLICT DO NOTHING in this database's dialect (PostgreSQL or SQLite)."""
    return (postgresql.insert if _is_postgresql() else sqlite.insert)(model)


def build_invoices(
    customer_ids: list[int], period: Period, *, actor: User | None = None, force: bool = False
) -> list[BuildResult]:
    """Build `period` for a chunk of customers in the current transaction; the caller commits.

    Per customer: record its run once (a run already recorded is left alone unless `force`), then
    create one invoice per currency of its unbilled lines. Lines dated before the period (late
    arrivals) are included as prior-period adjustments; lines dated after it wait. A currency
    already invoiced for the period is left alone: its late lines go onto the next period's invoice.
    Every step is one statement for the whole chunk; the unique keys of runs and invoices decide
    between concurrent builds (the loser's INSERT does nothing), and lines are attached only while
    unattached, so a line can never sit on two invoices.
    """
    now = utcnow()
    codes = dict(
        db.session.execute(select(Customer.id, Customer.code).where(Customer.id.in_(customer_ids)))
        .tuples()
        .all()
    )
    order = [cid for cid in dict.fromkeys(customer_ids) if cid in codes]
    results = {cid: BuildResult(codes[cid], period.key) for cid in order}
    if not order:
        return []
    claimed = set(
        db.session.scalars(
            _insert_ignoring_conflicts(InvoiceRun)
            .values(
                [
                    {"customer_id": cid, "period_start": period.start, "ran_at": now, "message": ""}
                    for cid in order
                ]
            )
            .on_conflict_do_nothing(index_elements=["customer_id", "period_start"])
            .returning(InvoiceRun.customer_id)
        )
    )
    todo = order if force else [cid for cid in order if cid in claimed]
    for cid in order:
        if cid not in todo:
            results[cid].message = "already run"
    if not todo:
        return [results[cid] for cid in order]

    unbilled = db.session.execute(
        select(LineItem.customer_id, LineItem.currency, func.count())
        .where(*_unbilled_lines(period), LineItem.customer_id.in_(todo))
        .group_by(LineItem.customer_id, LineItem.currency)
        .order_by(LineItem.customer_id, LineItem.currency)
    ).all()
    invoiced: dict[int, list[tuple[str, int]]] = {}
    for cid, currency, revision in db.session.execute(
        select(Invoice.customer_id, Invoice.currency, Invoice.revision).where(
            Invoice.customer_id.in_(todo), Invoice.period_start == period.start
        )
    ):
        invoiced.setdefault(cid, []).append((currency, revision))
    sequences = {cid: sum(1 for _, revision in rows if revision == 1) for cid, rows in invoiced.items()}
    skipped: dict[int, list[str]] = {}
    new_rows, expected_lines = [], 0
    for cid, currency, count in unbilled:
        if any(currency == c for c, _ in invoiced.get(cid, ())):
            skipped.setdefault(cid, []).append(currency)
            continue
        sequences[cid] = sequences.get(cid, 0) + 1
        expected_lines += count
        new_rows.append(
            {
                "number": with_suffixes(f"{codes[cid]}-{period.key}-{sequences[cid]}"),
                "customer_id": cid,
                "period_start": period.start,
                "period_end": period.end,
                "currency": currency,
                "revision": 1,
                "supplement": 0,
                "status": InvoiceStatus.PENDING_APPROVAL.value,
                "total_minor": 0,
                "line_count": 0,
                "adjustment_minor": 0,
                "adjustment_count": 0,
                "employee_count": 0,
                "partner_count": 0,
                "created_at": now,
                "created_by_id": actor.id if actor else None,
            }
        )
    created: dict[int, tuple[int, str, str]] = {}  # invoice id -> (customer id, currency, number)
    if new_rows:
        for invoice_id, cid, currency, number in db.session.execute(
            _insert_ignoring_conflicts(Invoice.__table__)
            .values(new_rows)
            .on_conflict_do_nothing()  # a concurrent build made it first: its invoice stands
            .returning(Invoice.id, Invoice.customer_id, Invoice.currency, Invoice.number)
        ):
            created[invoice_id] = (cid, currency, number)
    sums: dict[int, tuple[int, int, int]] = {}
    if created:
        ids = list(created)
        lines = LineItem.__table__
        attach = (
            update(lines)
            .where(
                *_unbilled_lines(period),
                LineItem.customer_id.in_(todo),
                Invoice.id.in_(ids),
                LineItem.customer_id == Invoice.customer_id,
                LineItem.currency == Invoice.currency,
            )
            .values(invoice_id=Invoice.id)
        )
        snapshot_written = _is_postgresql()
        if snapshot_written:
            # PostgreSQL: attach and snapshot in one statement, so the snapshot takes the attached
            # lines from the UPDATE's RETURNING instead of looking each one up again.
            attached_lines = attach.returning(
                LineItem.id, LineItem.invoice_id, (LineItem.service_date < Invoice.period_start).label("adj")
            ).cte("attached")
            attached = db.session.execute(
                insert(InvoiceLine).from_select(
                    ["invoice_id", "line_item_id", "is_adjustment"],
                    select(attached_lines.c.invoice_id, attached_lines.c.id, attached_lines.c.adj),
                )
            ).rowcount
        else:
            attached = db.session.execute(attach).rowcount
        if attached < expected_lines:  # another build took lines between our statements
            for (dropped,) in db.session.execute(_DROP_EMPTY, {"ids": ids}):
                del created[dropped]
            ids = list(created)
        if ids:
            if not snapshot_written:
                db.session.execute(_CHUNK_SNAPSHOT, {"ids": ids})
            if snapshot_written:  # PostgreSQL
                totalled = db.session.execute(_CHUNK_TOTALS_AND_SUMS, {"ids": ids})
            else:
                db.session.execute(_CHUNK_TOTALS, {"ids": ids})
                totalled = db.session.execute(_CHUNK_SUMS, {"ids": ids})
            sums = {row[0]: tuple(int(v) for v in row[1:]) for row in totalled}

    events = []
    for invoice_id, (cid, currency, number) in sorted(created.items()):
        total, lines, adjustments = sums[invoice_id]
        results[cid].created.append(number)
        events.append(
            {
                "action": "invoice.generated",
                "subject_type": "Invoice",
                "subject_id": invoice_id,
                "customer_id": cid,
                "details": {
                    "number": number,
                    "period": period.key,
                    "currency": currency,
                    "total_minor": total,
                    "lines": lines,
                    "adjustments": adjustments,
                    "credit_note": total < 0,
                },
            }
        )
    for cid in todo:
        result = results[cid]
        parts = []
        if result.created:
            parts.append(f"created {', '.join(result.created)}")
        if cid in skipped:
            parts.append(
                f"{', '.join(skipped[cid])} already invoiced for {period.key}; "
                "later lines wait for the next period"
            )
        if not parts and not any(c == cid for c, _, _ in unbilled):
            result.message = f"no unbilled line items up to {period.end.isoformat()}: no invoice"
        else:
            result.message = "; ".join(parts) or "nothing to invoice"
        events.append(
            {
                "action": "invoice.run",
                "subject_type": "Customer",
                "subject_id": cid,
                "customer_id": cid,
                "details": result.as_dict(),
            }
        )
    db.session.execute(
        update(InvoiceRun)
        .where(InvoiceRun.customer_id.in_(todo), InvoiceRun.period_start == period.start)
        .values(
            ran_at=now,
            message=case({cid: results[cid].message[:500] for cid in todo}, value=InvoiceRun.customer_id),
        )
        .execution_options(synchronize_session=False)
    )
    audit.record_many(events, actor=actor)
    notify = sorted(created.items())
    jobs.enqueue_many(
        notify_awaiting_approval,
        [(invoice_id,) for invoice_id, _ in notify],
        descriptions=[f"Notify {number}" for _, (_, _, number) in notify],
    )
    return [results[cid] for cid in order]


def build_chunk(
    customer_ids: list[int], period_key: str, actor_id: int | None = None, force: bool = False
) -> list[dict]:
    """The build job of a chunk of customers: one transaction, built again at once if it lost a race.

    A chunk that fails (a deadlock or a unique key with a concurrent build) rolls back alone and is
    built again, which creates only what is still missing; any other failure, or a second one, is
    raised, so the job is retried later (RQ's retry) and the other chunks are untouched.
    """
    period = Period.parse(period_key)
    for attempt in (1, 2):
        actor = db.session.get(User, actor_id) if actor_id else None
        try:
            results = build_invoices(customer_ids, period, actor=actor, force=force)
            db.session.commit()
        except DBAPIError as exc:
            if not _lost_to_concurrent_build(exc) or attempt == 2:
                raise  # e.g. the database went away: the job's own retry builds the chunk later
            db.session.rollback()
            continue
        return [r.as_dict() for r in results]
    raise AssertionError("unreachable")


def _lost_to_concurrent_build(exc: DBAPIError) -> bool:
    """A unique key, a deadlock or a serialization failure: building again settles it at once."""
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return isinstance(exc, IntegrityError) or sqlstate in ("40P01", "40001")


def build_due(period_key: str, customer_ids: list[int]) -> list[dict]:
    """The scheduler's build job for one chunk of due customers (a period not run yet is built)."""
    return build_chunk(customer_ids, period_key)


def build_in_chunks(
    customer_ids: list[int],
    period_key: str,
    *,
    chunk_size: int = CHUNK_SIZE,
    force: bool = False,
    on_chunk=None,
) -> list[dict]:
    """Build `period_key` for many customers now, chunk after chunk (the CLI's and the benchmark's)."""
    results = []
    for i in range(0, len(customer_ids), chunk_size):
        chunk = customer_ids[i : i + chunk_size]
        results.extend(build_chunk(chunk, period_key, force=force))
        if on_chunk is not None:
            on_chunk(chunk)
    return results


def run_period(customer_id: int, period_key: str, actor_id: int | None = None, force: bool = False) -> dict:
    """The build job of one customer ("generate now", the CLI): a chunk of one; idempotent.

    Without `force` (the scheduler), a period already run is left alone. With `force` (an admin's
    "generate now" or the CLI), the build runs again, which creates only what is missing.
    """
    (result,) = build_chunk([customer_id], period_key, actor_id, force)
    return result


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
    """The scheduler's job: enqueue the due customers' builds, a job per chunk; return how many customers."""
    due = due_customers(now=now)
    by_period: dict[str, list[Customer]] = {}
    for customer, period in due:
        by_period.setdefault(period.key, []).append(customer)
    for period_key, customers in sorted(by_period.items()):
        for i in range(0, len(customers), CHUNK_SIZE):
            chunk = customers[i : i + CHUNK_SIZE]
            jobs.enqueue(
                build_due,
                period_key,
                [c.id for c in chunk],
                queue="invoices",
                description=f"Invoices {period_key}: {chunk[0].code}"
                + (f" … {chunk[-1].code} ({len(chunk)} customers)" if len(chunk) > 1 else ""),
            )
    db.session.commit()
    return len(due)
