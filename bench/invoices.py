"""Invoicing benchmark: build every customer's monthly invoices through the real code path.

    python bench/invoices.py [--lines N] [--customers N] [--database-url URL] [--chunk-size 500]
                             [--employees-per-customer 10] [--partners 3] [--extra-index] [--keep]

DESTRUCTIVE for the target database: the PostgreSQL database (default
postgresql+psycopg://postgres@127.0.0.1:5432/bench_invoices) is DROPPED and CREATED again, migrated,
and filled. To protect real data its name must contain "bench". Without --keep it is dropped at the
end. PostgreSQL only (the lines are bulk-loaded with COPY).

Setup (not measured): a few partners with one Upload each, N customers with their employees, and
N line items loaded by COPY: service dates in 2026-10, about 8% in 2026-09 (prior-period
adjustments), about 3% negative amounts, and a second currency (EUR) on some lines of 5% of the
customers; then VACUUM ANALYZE.

What is measured:
  ours       the hourly run's path: build_in_chunks(every customer, "2026-10", force=True), i.e.
             build_chunk() (the body of the chunk job) on chunks of --chunk-size customers, one
             transaction each, in one app context. Per chunk it records the runs, inserts the
             invoices, attaches the lines (one UPDATE), snapshots them (invoice_lines), stores the
             totals, writes the audit events (one chained INSERT) and the notification jobs, and
             commits (the jobs are pushed to the in-process queue after the commit, as in the
             embedded mode). The phases come from SQLAlchemy cursor events (time spent executing
             each kind of statement), the dialect's commit, and the job push; "python/ORM" is the
             rest. The first and the last chunk are timed apart, to show any slow-down.
  baseline   the issue's reference: one plain SELECT customer_id, currency, SUM(amount_minor),
             COUNT(*) FROM line_items GROUP BY customer_id, currency, all rows fetched (best of 3).
  reference  a fairer lower bound for work that must write: in one transaction that is rolled back,
             the set-based SQL that any implementation has to do at least: one INSERT of every
             invoice, one UPDATE attaching all lines, one INSERT of every invoice_lines row.
             The target (issue 15) is ours <= 1.5x the reference, measured in the same run.

--extra-index creates CREATE INDEX bench_line_items_invoice_id ON line_items (invoice_id) in the
benchmark database only (it is NOT in the migrations), to measure what that index would change.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ingest import (  # noqa: E402
    COURSES,
    FIRST,
    LAST,
    LINE_COLUMNS,
    TERMS,
    _conninfo,
    drop_database,
    make_app,
)
from bench.ingest import reset_database as _reset_database  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_invoices"
TARGET_RATIO = 1.5  # ours / the set-based reference writes (issue 15)
PERIOD = "2026-10"
EXTRA_INDEX = "CREATE INDEX bench_line_items_invoice_id ON line_items (invoice_id)"
EXPENSE_TYPES = ("tuition", "materials", "tutoring", "fees", "other")
CREATED_AT = "2026-11-01 00:00:00+00"
BASELINE_SQL = (
    "SELECT customer_id, currency, SUM(amount_minor), COUNT(*) FROM line_items GROUP BY customer_id, currency"
)


# --- database setup -------------------------------------------------------------------------------


def reset_database(url: str) -> None:
    from sqlalchemy.engine import make_url

    if make_url(url).get_backend_name() != "postgresql":
        sys.exit("bench/invoices.py needs PostgreSQL (the lines are loaded with COPY)")
    _reset_database(url)


def setup_tenants(app, customers: int, per_customer: int, partners: int):
    """Migrate; create partners (+ one Upload each), customers and employees. Returns their ids."""
    from flask_migrate import upgrade
    from sqlalchemy import insert, select

    from portal import accounts
    from portal.extensions import db
    from portal.models import Customer, Employee, Upload

    with app.app_context():
        upgrade()
        partner_uploads: list[tuple[int, int]] = []
        for p in range(1, partners + 1):
            partner = accounts.create_partner(slug=f"bench-partner-{p}", name=f"Bench Partner {p}")
            upload = Upload(
                partner_id=partner.id,
                filename="bench.csv",
                storage_key=f"bench/{p}",
                sha256=f"{p:064x}",
                size_bytes=1,
            )
            db.session.add(upload)
            db.session.flush()
            partner_uploads.append((partner.id, upload.id))
        db.session.execute(
            insert(Customer),
            [{"code": f"C{c:05d}", "name": f"Customer {c}"} for c in range(1, customers + 1)],
        )
        customer_ids = list(db.session.scalars(select(Customer.id).order_by(Customer.id)))
        now = dt.datetime.now(dt.UTC)
        db.session.execute(
            insert(Employee),
            [
                {
                    "customer_id": cid,
                    "external_id": f"E{e:04d}",
                    "name": f"{FIRST[e % len(FIRST)]} {LAST[(e + c) % len(LAST)]}",
                    "created_at": now,
                    "updated_at": now,
                }
                for c, cid in enumerate(customer_ids)
                for e in range(1, per_customer + 1)
            ],
        )
        db.session.commit()
        employees: dict[int, list[int]] = {}
        for cid, eid in db.session.execute(select(Employee.customer_id, Employee.id).order_by(Employee.id)):
            employees.setdefault(cid, []).append(eid)
        db.session.remove()
        db.engine.dispose()
    return partner_uploads, customer_ids, employees


def load_lines(url: str, lines: int, partner_uploads, customer_ids, employees) -> tuple[int, int]:
    """COPY `lines` line items in; returns (lines with a second currency, customers with two)."""
    import psycopg

    rng = random.Random(20261101)
    two_currency = set(rng.sample(customer_ids, max(1, len(customer_ids) // 20)))
    october = [dt.date(2026, 10, d).isoformat() for d in range(1, 32)]
    september = [dt.date(2026, 9, d).isoformat() for d in range(1, 31)]
    cols = ", ".join(LINE_COLUMNS)
    eur = 0
    with psycopg.connect(**_conninfo(url)) as conn:
        with conn.cursor() as cur, cur.copy(f"COPY line_items ({cols}) FROM STDIN (FORMAT csv)") as copy:
            buf = io.StringIO()
            for i in range(lines):
                cid = customer_ids[rng.randrange(len(customer_ids))]
                partner_id, upload_id = partner_uploads[rng.randrange(len(partner_uploads))]
                amount = rng.randint(100, 200_000)
                if rng.random() < 0.03:
                    amount = -amount
                currency = "USD"
                if cid in two_currency and rng.random() < 0.3:
                    currency = "EUR"
                    eur += 1
                day = rng.choice(september) if rng.random() < 0.08 else rng.choice(october)
                term = rng.choice(TERMS)
                buf.write(
                    f"{partner_id},{cid},{rng.choice(employees[cid])},REF-{i + 1:08d},"
                    f"{rng.choice(EXPENSE_TYPES)},{amount},{currency},{day},{rng.choice(COURSES)},"
                    f"{term},{upload_id},{i + 2},{i:064x},{CREATED_AT}\n"
                )
                if i % 50_000 == 49_999:
                    copy.write(buf.getvalue())
                    buf = io.StringIO()
            copy.write(buf.getvalue())
        conn.commit()
    with psycopg.connect(**_conninfo(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return eur, len(two_currency)


# --- the baseline and the set-based reference ------------------------------------------------------


def baseline(url: str) -> tuple[float, dict]:
    """The plain GROUP BY, best of 3, all rows fetched; returns seconds and its rows."""
    import psycopg

    best, rows = float("inf"), []
    with psycopg.connect(**_conninfo(url)) as conn:
        for _ in range(3):
            start = time.perf_counter()
            rows = conn.execute(BASELINE_SQL).fetchall()
            best = min(best, time.perf_counter() - start)
    return best, {(c, cur): (int(s), n) for c, cur, s, n in rows}


def set_based_reference(url: str) -> dict[str, float]:
    """Time the unavoidable writes done set-based in raw SQL, then roll back and VACUUM."""
    import psycopg

    steps = {
        "INSERT every invoice": (
            "INSERT INTO invoices (number, customer_id, period_start, period_end, currency, revision,"
            " status, total_minor, line_count, adjustment_minor, adjustment_count, employee_count,"
            " partner_count, created_at)"
            " SELECT 'RAW-' || customer_id || '-' || currency, customer_id, DATE '2026-10-01',"
            " DATE '2026-10-31', currency, 1, 'pending_approval', 0, 0, 0, 0, 0, 0, now()"
            " FROM line_items GROUP BY customer_id, currency"
        ),
        "UPDATE line_items SET invoice_id (all lines)": (
            "UPDATE line_items li SET invoice_id = i.id FROM invoices i"
            " WHERE i.customer_id = li.customer_id AND i.currency = li.currency AND li.invoice_id IS NULL"
        ),
        "INSERT invoice_lines (all lines)": (
            "INSERT INTO invoice_lines (invoice_id, line_item_id, is_adjustment)"
            " SELECT invoice_id, id, service_date < DATE '2026-10-01' FROM line_items"
        ),
    }
    timings = {}
    with psycopg.connect(**_conninfo(url)) as conn:
        conn.execute("CHECKPOINT")
        for name, statement in steps.items():
            start = time.perf_counter()
            conn.execute(statement)
            timings[name] = time.perf_counter() - start
        conn.rollback()
    with psycopg.connect(**_conninfo(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE line_items")
        conn.execute("VACUUM ANALYZE invoices")
        conn.execute("VACUUM ANALYZE invoice_lines")
        conn.execute("CHECKPOINT")
    return timings


# --- our path -------------------------------------------------------------------------------------


def _phase(statement: str) -> str:
    s = " ".join(statement.split())
    if s.startswith("WITH attached AS (UPDATE line_items"):
        return "attach + snapshot (UPDATE ... RETURNING into INSERT invoice_lines)"
    if s.startswith("UPDATE line_items"):
        return "attach (UPDATE line_items)"
    if "INSERT INTO invoice_lines" in s and "INSERT INTO invoice_totals" in s:
        return "snapshot + totals (one statement)"
    if "INSERT INTO invoice_lines" in s:
        return "snapshot (INSERT invoice_lines)"
    if "INSERT INTO invoice_totals" in s or ("FROM line_items" in s and "sum(" in s.lower()):
        return "totals (INSERT invoice_totals + sums)"
    if "INSERT INTO invoice_runs" in s or s.startswith("UPDATE invoice_runs"):
        return "runs (INSERT + UPDATE invoice_runs)"
    if s.startswith("INSERT INTO invoices"):
        return "invoices (INSERT)"
    if "INSERT INTO audit_events" in s:
        return "audit events (INSERT)"
    if "job_records" in s:
        return "job records (INSERT)"
    if "FROM line_items" in s:
        return "unbilled lookup (currencies)"
    return "other SQL (run, invoice row, lookups)"


def ours(app, customer_ids: list[int], chunk_size: int) -> dict:
    """Build every customer's invoices chunk by chunk; return time, phases, chunk times and counts."""
    from sqlalchemy import event

    import portal.jobs
    from portal.extensions import db
    from portal.invoicing.build import build_in_chunks

    phases: dict[str, float] = {}
    state = {"statements": 0, "start": 0.0, "quiet": False}

    with app.app_context():
        engine = db.engine

        def before(conn, cursor, statement, parameters, context, executemany):
            state["start"] = time.perf_counter()

        def after(conn, cursor, statement, parameters, context, executemany):
            if state["quiet"]:
                return
            name = _phase(statement)
            phases[name] = phases.get(name, 0.0) + time.perf_counter() - state["start"]
            state["statements"] += 1

        dialect = engine.dialect
        real_commit, real_push = dialect.do_commit, portal.jobs.push_to_rq

        def do_commit(dbapi_connection):
            start = time.perf_counter()
            try:
                return real_commit(dbapi_connection)
            finally:
                phases["commit"] = phases.get("commit", 0.0) + time.perf_counter() - start
                state["statements"] += 1

        def push_to_rq(ids):
            start, state["quiet"] = time.perf_counter(), True
            try:
                return real_push(ids)
            finally:
                state["quiet"] = False
                phases["push jobs to queue (after commit)"] = (
                    phases.get("push jobs to queue (after commit)", 0.0) + time.perf_counter() - start
                )

        db.session.connection()  # connect before the clock starts
        db.session.commit()
        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)
        dialect.do_commit, portal.jobs.push_to_rq = do_commit, push_to_rq
        chunks: list[tuple[int, float]] = []
        mark = [0.0]

        def on_chunk(chunk):
            now = time.perf_counter()
            chunks.append((len(chunk), now - mark[0]))
            mark[0] = now

        try:
            start = mark[0] = time.perf_counter()
            results = build_in_chunks(
                customer_ids, PERIOD, chunk_size=chunk_size, force=True, on_chunk=on_chunk
            )
            elapsed = time.perf_counter() - start
            created = sum(len(r["created"]) for r in results)
        finally:
            event.remove(engine, "before_cursor_execute", before)
            event.remove(engine, "after_cursor_execute", after)
            dialect.do_commit, portal.jobs.push_to_rq = real_commit, real_push
        db.session.remove()
    phases["python/ORM (the rest)"] = elapsed - sum(phases.values())
    return {
        "elapsed": elapsed,
        "phases": phases,
        "created": created,
        "statements": state["statements"],
        "chunks": chunks,
    }


def check(app, url: str, expected: dict) -> tuple[bool, str]:
    """Every line attached once, one snapshot row per line, invoice totals equal to the GROUP BY."""
    import psycopg

    with psycopg.connect(**_conninfo(url)) as conn:
        unattached = conn.execute("SELECT count(*) FROM line_items WHERE invoice_id IS NULL").fetchone()[0]
        snapshot = conn.execute("SELECT count(*) FROM invoice_lines").fetchone()[0]
        totals = conn.execute(
            "SELECT dimension, sum(amount_minor), sum(line_count) FROM invoice_totals GROUP BY dimension"
        ).fetchall()
        got = {
            (c, cur): (int(t), n)
            for c, cur, t, n in conn.execute(
                "SELECT customer_id, currency, total_minor, line_count FROM invoices"
            ).fetchall()
        }
    chain_ok, _, first_bad = verify_audit_chain(app)
    lines = sum(n for _, n in expected.values())
    total = sum(t for t, _ in expected.values())
    problems = []
    if not chain_ok:
        problems.append(f"audit chain broken at {first_bad}")
    if unattached:
        problems.append(f"{unattached} lines unattached")
    if snapshot != lines:
        problems.append(f"invoice_lines {snapshot} != {lines}")
    if got != expected:
        problems.append("invoice totals differ from the GROUP BY")
    for dimension, amount, count in totals:
        if (int(amount), int(count)) != (total, lines):
            problems.append(f"{dimension} totals {amount}/{count} != {total}/{lines}")
    return not problems, "; ".join(problems)


def verify_audit_chain(app):
    """`flask audit verify`'s check, on the benchmark database: (ok, events, first bad)."""
    from portal.core.audit_chain import verify_chain

    with app.app_context():
        return verify_chain()


# --- main ------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL),
        help="PostgreSQL database to DROP and CREATE (name must contain 'bench'; default %(default)s)",
    )
    parser.add_argument(
        "--chunk-size", type=int, default=None, help="customers per chunk (default CHUNK_SIZE)"
    )
    parser.add_argument("--employees-per-customer", type=int, default=10)
    parser.add_argument("--partners", type=int, default=3)
    parser.add_argument(
        "--extra-index",
        action="store_true",
        help="also create an index on line_items(invoice_id), in the benchmark database only",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()

    url = args.database_url
    workdir = Path(tempfile.mkdtemp(prefix="bench-invoices-"))
    print(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; "
        f"lines: {args.lines:,}; customers: {args.customers:,}"
    )
    print(f"database: {url} (reset: dropped and created)")

    reset_database(url)
    app = make_app(url, workdir)
    t = time.perf_counter()
    partner_uploads, customer_ids, employees = setup_tenants(
        app, args.customers, args.employees_per_customer, args.partners
    )
    eur, two = load_lines(url, args.lines, partner_uploads, customer_ids, employees)
    print(
        f"loaded (not measured) in {time.perf_counter() - t:.1f} s: {len(partner_uploads)} partners, "
        f"{len(customer_ids):,} customers x {args.employees_per_customer} employees, {args.lines:,} lines "
        f"({two:,} customers also bill EUR: {eur:,} lines)"
    )
    if args.extra_index:
        import psycopg

        with psycopg.connect(**_conninfo(url), autocommit=True) as conn:
            conn.execute(EXTRA_INDEX)
            conn.execute("ANALYZE line_items")
        print(f"EXTRA INDEX (bench database only, not in the migrations): {EXTRA_INDEX}")

    base, expected = baseline(url)
    reference = set_based_reference(url)
    from portal.invoicing.build import CHUNK_SIZE

    chunk_size = args.chunk_size or CHUNK_SIZE
    result = ours(app, customer_ids, chunk_size)
    same, problems = check(app, url, expected)

    elapsed = result["elapsed"]
    ref_total = sum(reference.values())
    n = len(customer_ids)
    print(
        f"ours:     build_in_chunks x {n:,} customers, chunks of {chunk_size}: "
        f"{result['created']:,} invoices in {elapsed:.2f} s = {args.lines / elapsed:,.0f} lines/s, "
        f"{elapsed / n * 1e3:.2f} ms/customer, "
        f"{result['statements'] / n:.2f} statements/customer"
    )
    chunks = result["chunks"]
    first, last = chunks[0], chunks[-1]
    print(
        f"  chunks: {len(chunks)}; first {first[1]:.2f} s ({first[1] / first[0] * 1e3:.2f} ms/customer), "
        f"last {last[1]:.2f} s ({last[1] / last[0] * 1e3:.2f} ms/customer)"
    )
    print("  ms/customer by chunk: " + " ".join(f"{t / k * 1e3:.1f}" for k, t in chunks))
    for name, seconds in sorted(result["phases"].items(), key=lambda kv: -kv[1]):
        print(f"  {name:<40} {seconds:8.2f} s  {seconds / n * 1e3:7.3f} ms/customer")
    print(
        f"baseline: SELECT ... GROUP BY customer_id, currency ({len(expected):,} rows, best of 3): "
        f"{base:.3f} s"
        f" (invoices match it and the audit chain verifies: {'yes' if same else 'NO: ' + problems})"
    )
    print(f"reference: set-based raw SQL writes (rolled back): {ref_total:.2f} s")
    for name, seconds in reference.items():
        print(f"  {name:<44} {seconds:8.2f} s")
    print(f"ratio ours/baseline (GROUP BY, for information): {elapsed / base:.1f}x")
    ratio = elapsed / ref_total
    verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
    print(
        f"ratio ours/reference (raw set-based writes): {ratio:.2f}x (target <= {TARGET_RATIO:g}x: {verdict})"
    )
    if args.extra_index:
        print(f"(measured WITH the extra bench-only index: {EXTRA_INDEX})")

    shutil.rmtree(workdir, ignore_errors=True)
    if args.keep:
        print("kept: the database")
    else:
        drop_database(url)
    if not same or ratio > TARGET_RATIO:
        sys.exit(1)  # a missed target or a wrong result, for scripts that run the benchmark


if __name__ == "__main__":
    main()
