"""Ingestion benchmark: a realistic N-row partner CSV through the real code path, next to a raw COPY.

    python bench/ingest.py [--rows N] [--database-url URL] [--customers 100]
                           [--employees-per-customer 50] [--keep]

DESTRUCTIVE for the target database: a PostgreSQL database is DROPPED and CREATED again (default
postgresql+psycopg://postgres@127.0.0.1:5432/bench_ingest); a SQLite file is deleted and recreated.
To protect real data the database (or SQLite file) name must contain "bench". Without --keep the
database and the generated files are removed at the end.

What is measured:
  ours      receive_upload (sha256 + store the original) + commit + run_job(parse job): parse,
            normalize, stage into upload_rows, classify, import into line_items. On PostgreSQL
            the lines go in while the rows are staged (portal/ingest/early_lines.py: a chunk is
            inserted while the next is read), so the "stage" phase holds the import and the
            INSERT ... SELECT line shows 0 when the early lines were kept. It runs in a
            child process so that its peak RSS (getrusage ru_maxrss of that process, Python and
            the app included) is not polluted by the CSV generation or the baseline.
  baseline  the same normalized line_items rows (final column values, pre-computed) loaded into
            the emptied line_items table, with its indexes and constraints: a raw COPY ... FROM
            STDIN (FORMAT csv) on PostgreSQL, one executemany INSERT on SQLite.
Both sides start right after a CHECKPOINT (PostgreSQL), so neither pays for writing back the
pages that the setup or the other side left dirty.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_ingest"
TARGET_RATIO = 1.5  # issue 15
TARGET_RSS_MB = 150

HEADERS = [
    "Student ID",
    "Student Name",
    "Employer",
    "Transaction ID",
    "Fee Type",
    "Amount",
    "Currency",
    "Date of Service",
    "Course",
    "Term",
]
PROFILE = {
    "format": "tuition-portal/mapping-profile",
    "version": 1,
    "columns": {
        "employee_external_id": "Student ID",
        "employee_name": "Student Name",
        "customer_code": "Employer",
        "partner_reference": "Transaction ID",
        "expense_type": "Fee Type",
        "amount": "Amount",
        "currency": "Currency",
        "service_date": "Date of Service",
        "description": "Course",
        "term": "Term",
    },
    "date_formats": [],
    "decimal_separator": ".",
    "default_currency": "USD",
    "default_customer": None,
    "expense_type_synonyms": {"Course Fee": "fees", "Study Guide": "materials"},
    "sheet": None,
}
# Partner wording -> canonical type (built-in synonyms, the profile's own, and canonical names).
EXPENSE_WORDING = [
    ("Tuition", "tuition"),
    ("Tuition Fee", "tuition"),
    ("Course Tuition", "tuition"),
    ("Books & Materials", "materials"),
    ("Textbooks", "materials"),
    ("Study Guide", "materials"),
    ("Tutoring Session", "tutoring"),
    ("tutoring", "tutoring"),
    ("Registration Fee", "fees"),
    ("Lab Fee", "fees"),
    ("Course Fee", "fees"),
    ("Misc", "other"),
]
COURSES = [
    "Econ 101",
    "Math 200",
    "Intro to Accounting",
    "Data Structures",
    "Organic Chemistry II",
    "Business Writing",
    "Project Management Certificate",
    "Statistics for Managers",
    "Spanish I",
    "Nursing Fundamentals",
]
TERMS = ["Spring 2025", "Summer 2025", "Fall 2025", "Spring 2026", "Summer 2026", ""]
FIRST = ["Ana", "Bo", "Cy", "Dana", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jun", "Kofi", "Lena"]
LAST = ["Souza", "Chen", "Dunn", "Okafor", "Novak", "Garcia", "Ito", "Muller", "Singh", "Smith"]
CREATED_AT = "2026-01-01 00:00:00+00"
LINE_COLUMNS = (
    "partner_id",
    "customer_id",
    "employee_id",
    "partner_reference",
    "expense_type",
    "amount_minor",
    "currency",
    "service_date",
    "description",
    "term",
    "upload_id",
    "source_row",
    "fingerprint",
    "created_at",
)


# --- database setup -------------------------------------------------------------------------------


def reset_database(url: str) -> None:
    """Drop and create the target database (PostgreSQL) or delete the SQLite file."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    name = parsed.database or ""
    if "bench" not in Path(name).name:
        sys.exit(f"refusing to reset {name!r}: the benchmark database name must contain 'bench'")
    if parsed.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(name + suffix).unlink(missing_ok=True)
        return
    import psycopg
    from psycopg import sql

    with psycopg.connect(**_conninfo(url, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(url: str) -> None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        Path(parsed.database).unlink(missing_ok=True)
        return
    import psycopg
    from psycopg import sql

    with psycopg.connect(**_conninfo(url, "postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(parsed.database))
        )


def _conninfo(url: str, dbname: str | None = None) -> dict:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    info = {
        "host": parsed.host or "127.0.0.1",
        "port": parsed.port or 5432,
        "dbname": dbname or parsed.database,
    }
    if parsed.username:
        info["user"] = parsed.username
    if parsed.password:
        info["password"] = parsed.password
    return info


def make_app(url: str, workdir: Path):
    os.environ["PORTAL_INSTANCE_PATH"] = str(workdir / "instance")
    from portal import create_app

    return create_app(
        {
            "SECRET_KEY": "bench-secret-key",
            "SQLALCHEMY_DATABASE_URI": url,
            "STORAGE_URL": f"file://{workdir / 'storage'}",
            "MAIL_OUTBOX_DIR": str(workdir / "mail"),
            "RATELIMIT_STORAGE_URI": "memory://",
            "EMBEDDED_WORKER": False,
            "REDIS_URL": None,
        }
    )


def setup_tenants(app, customers: int, per_customer: int) -> tuple[int, dict[str, int], dict[str, int]]:
    """Migrate; create the partner, its profile, customers and employees. Returns their ids."""
    from flask_migrate import upgrade
    from sqlalchemy import insert, select

    from portal import accounts
    from portal.extensions import db
    from portal.ingest.profiles import save_mapping
    from portal.models import Employee

    with app.app_context():
        upgrade()
        partner = accounts.create_partner(slug="bench-university", name="Bench University")
        save_mapping(partner, PROFILE)
        now = dt.datetime.now(dt.UTC)
        customer_ids: dict[str, int] = {}
        for c in range(1, customers + 1):
            customer_ids[f"C{c:04d}"] = accounts.create_customer(code=f"C{c:04d}", name=f"Customer {c}").id
        db.session.execute(
            insert(Employee),
            [
                {
                    "customer_id": cid,
                    "external_id": f"E{c:04d}{e:04d}",
                    "name": f"{FIRST[e % len(FIRST)]} {LAST[(e + c) % len(LAST)]}",
                    "created_at": now,
                    "updated_at": now,
                }
                for c, cid in enumerate(customer_ids.values(), start=1)
                for e in range(1, per_customer + 1)
            ],
        )
        db.session.commit()
        employee_ids = {
            f"{cid}:{ext}": eid
            for cid, ext, eid in db.session.execute(
                select(Employee.customer_id, Employee.external_id, Employee.id)
            )
        }
        partner_id = partner.id
        db.session.remove()
        db.engine.dispose()
    return partner_id, customer_ids, employee_ids


# --- the partner file and its normalized rows ------------------------------------------------------


def generate(
    path: Path,
    normalized_path: Path,
    rows: int,
    *,
    partner_id: int,
    upload_id: int,
    customer_ids: dict[str, int],
    employee_ids: dict[str, int],
    per_customer: int,
) -> None:
    """Write the partner CSV and, row for row, the final line_items values it must produce."""
    from portal.ingest.normalize import NormalizedRow, content_fingerprint

    rng = random.Random(20260101)
    codes = list(customer_ids)
    start = dt.date(2025, 1, 1)
    dates = [start + dt.timedelta(days=d) for d in range(540)]
    with (
        path.open("w", newline="", encoding="utf-8") as raw_file,
        normalized_path.open("w", newline="", encoding="utf-8") as norm_file,
    ):
        raw = csv.writer(raw_file, lineterminator="\r\n")
        norm = csv.writer(norm_file, lineterminator="\n")
        raw.writerow(HEADERS)
        for i in range(rows):
            code = rng.choice(codes)
            customer_id = customer_ids[code]
            e = rng.randint(1, per_customer)
            external = f"E{int(code[1:]):04d}{e:04d}"
            name = f"{FIRST[e % len(FIRST)]} {LAST[(e + int(code[1:])) % len(LAST)]}"
            wording, expense_type = rng.choice(EXPENSE_WORDING)
            cents = rng.randint(500, 900_000) if expense_type == "tuition" else rng.randint(100, 60_000)
            refund = rng.random() < 0.03
            text = f"{cents // 100:,}.{cents % 100:02d}"
            amount_text = f"({text})" if refund else text
            amount_minor = -cents if refund else cents
            currency = "usd" if rng.random() < 0.05 else "USD"
            service_date = rng.choice(dates)
            course = rng.choice(COURSES)
            term = rng.choice(TERMS)
            reference = f"TX-{i + 1:08d}"
            raw.writerow(
                [
                    external,
                    name,
                    code,
                    reference,
                    wording,
                    amount_text,
                    currency,
                    service_date.isoformat(),
                    course,
                    term,
                ]
            )
            fingerprint = content_fingerprint(
                NormalizedRow(
                    row_number=i + 2,
                    employee_external_id=external,
                    employee_name=name,
                    customer_code=code,
                    partner_reference=reference,
                    expense_type=expense_type,
                    amount_minor=amount_minor,
                    currency="USD",
                    service_date=service_date,
                    description=course,
                    term=term or None,
                )
            )
            norm.writerow(
                [
                    partner_id,
                    customer_id,
                    employee_ids[f"{customer_id}:{external}"],
                    reference,
                    expense_type,
                    amount_minor,
                    "USD",
                    service_date.isoformat(),
                    course,
                    term,  # empty unquoted field: NULL in COPY's csv format
                    upload_id,
                    i + 2,
                    fingerprint,
                    CREATED_AT,
                ]
            )


# --- our path, in a child process ------------------------------------------------------------------


def child(config: dict) -> None:
    """Receive and parse the file through the real code path; print one JSON line of figures."""
    wall_start = time.perf_counter()
    app = make_app(config["url"], Path(config["workdir"]))
    from sqlalchemy import select

    from portal import jobs
    from portal.extensions import db
    from portal.ingest import importing, parse, reports
    from portal.ingest.receive import receive_upload
    from portal.models import Partner, Upload

    phases: dict[str, float] = dict.fromkeys(
        (
            "receive (sha256 + store)",
            "read+stage (+ lines on PostgreSQL)",
            "classify",
            "import",
            "  of which INSERT ... SELECT",
        ),
        0.0,
    )

    def timed(name, func):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                phases[name] = phases.get(name, 0.0) + time.perf_counter() - start

        return wrapper

    # Patched where the parse job looks them up, so only the parse of this run is timed.
    parse._stage_all = timed("read+stage (+ lines on PostgreSQL)", parse._stage_all)
    parse._classify = timed("classify", parse._classify)
    parse.import_upload = timed("import", parse.import_upload)
    importing.insert_lines = timed("  of which INSERT ... SELECT", importing.insert_lines)

    with app.app_context():
        partner = db.session.scalar(select(Partner).where(Partner.id == config["partner_id"]))
        db.session.connection()  # connect before the clock starts
        start = time.perf_counter()
        with open(config["csv"], "rb") as stream:
            upload = receive_upload(
                partner, stream, "bench.csv", user=None, max_bytes=50 * 1024 * 1024 * 1024
            )
        db.session.commit()
        phases["receive (sha256 + store)"] = time.perf_counter() - start
        upload_id, job_id = upload.id, upload.job_id
        jobs.run_job(job_id)
        elapsed = time.perf_counter() - start
        summary = reports.summary(db.session.get(Upload, upload_id))
    phases["other (commits, counts, audit, job)"] = elapsed - sum(
        seconds for name, seconds in phases.items() if not name.startswith(" ")
    )
    print(
        json.dumps(
            {
                "elapsed": elapsed,
                "phases": phases,
                "summary": summary,
                "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "process_seconds": time.perf_counter() - wall_start,
            }
        )
    )


# --- the baseline ----------------------------------------------------------------------------------


def line_items_check(url: str) -> tuple:
    """An aggregate that tells whether two loads produced the same line_items."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT count(*), sum(amount_minor), sum(source_row), count(DISTINCT employee_id),"
                " min(fingerprint), max(fingerprint), count(term), min(service_date), max(service_date)"
                " FROM line_items"
            )
        ).one()
    engine.dispose()
    return tuple(str(v) for v in row)


def checkpoint(url: str) -> None:
    """Write every dirty page to disk now (PostgreSQL), so that a measurement does not pay for
    the writes of what ran before it."""
    from sqlalchemy.engine import make_url

    if make_url(url).get_backend_name() == "postgresql":
        import psycopg

        with psycopg.connect(**_conninfo(url), autocommit=True) as conn:
            conn.execute("CHECKPOINT")


def baseline(url: str, normalized_path: Path) -> float:
    """Empty line_items, then load the pre-normalized rows the fastest raw way; return seconds."""
    from sqlalchemy.engine import make_url

    cols = ", ".join(LINE_COLUMNS)
    if make_url(url).get_backend_name() == "sqlite":
        import sqlite3

        conn = sqlite3.connect(make_url(url).database)
        conn.execute("DELETE FROM line_items")
        conn.commit()
        with normalized_path.open(newline="", encoding="utf-8") as f:
            rows = [
                tuple(int(v) if i in (0, 1, 2, 5, 10, 11) else (v or None) for i, v in enumerate(r))
                for r in csv.reader(f)
            ]
        placeholders = ", ".join("?" for _ in LINE_COLUMNS)
        start = time.perf_counter()
        conn.executemany(f"INSERT INTO line_items ({cols}) VALUES ({placeholders})", rows)
        conn.commit()
        elapsed = time.perf_counter() - start
        conn.close()
        return elapsed
    import psycopg

    with psycopg.connect(**_conninfo(url)) as conn:
        conn.execute("TRUNCATE line_items CASCADE")  # benchmark database only
        conn.commit()
        conn.execute("CHECKPOINT")  # as before ours
        start = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy(f"COPY line_items ({cols}) FROM STDIN (FORMAT csv)") as copy,
            normalized_path.open("rb") as f,
        ):
            while block := f.read(1024 * 1024):
                copy.write(block)
        conn.commit()
        return time.perf_counter() - start


# --- main ------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--customers", type=int, default=100)
    parser.add_argument("--employees-per-customer", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="keep the database and the generated files")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return

    url = args.database_url
    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    csv_path, normalized_path = workdir / "partner.csv", workdir / "normalized.csv"
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; rows: {args.rows:,}")
    print(f"database: {url} (reset: dropped and created)")

    reset_database(url)
    app = make_app(url, workdir)
    partner_id, customer_ids, employee_ids = setup_tenants(app, args.customers, args.employees_per_customer)
    del app
    t = time.perf_counter()
    generate(
        csv_path,
        normalized_path,
        args.rows,
        partner_id=partner_id,
        upload_id=1,  # the first upload of a fresh database; checked below
        customer_ids=customer_ids,
        employee_ids=employee_ids,
        per_customer=args.employees_per_customer,
    )
    size_mb = csv_path.stat().st_size / 1e6
    print(f"generated {csv_path} ({size_mb:,.1f} MB) in {time.perf_counter() - t:.1f} s")

    config = {"url": url, "workdir": str(workdir), "csv": str(csv_path), "partner_id": partner_id}
    checkpoint(url)  # as before the baseline: both sides start with no dirty pages to write back
    proc = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        sys.exit(f"the ingestion child failed (exit {proc.returncode})")
    ours = json.loads(proc.stdout.strip().splitlines()[-1])
    summary = ours["summary"]
    if summary["upload_id"] != 1 or summary["status"] != "imported" or summary["imported"] != args.rows:
        sys.exit(f"the file did not import cleanly: {summary}")
    check_ours = line_items_check(url)

    base = baseline(url, normalized_path)
    check_base = line_items_check(url)
    same = check_ours == check_base

    elapsed, rss_mb = ours["elapsed"], ours["maxrss_kb"] / 1024
    ratio = elapsed / base
    print(
        f"ours:     {args.rows:,} rows in {elapsed:.2f} s = {args.rows / elapsed:,.0f} rows/s; "
        f"peak RSS {rss_mb:.0f} MB (whole child process)"
    )
    for name, seconds in ours["phases"].items():
        print(f"  {name:<38} {seconds:8.2f} s  {seconds / args.rows * 1e6:7.2f} us/row")
    kind = "executemany INSERT" if url.startswith("sqlite") else "COPY"
    print(
        f"baseline: raw {kind} of the same normalized rows: {base:.2f} s = {args.rows / base:,.0f} rows/s"
        f" (same line_items as ours: {'yes' if same else 'NO'})"
    )
    ratio_ok, rss_ok = ratio <= TARGET_RATIO, rss_mb <= TARGET_RSS_MB
    verdict_ratio = "PASS" if ratio_ok else "FAIL"
    verdict_rss = "PASS" if rss_ok else "FAIL"
    print(
        f"ratio ours/baseline: {ratio:.2f}x (target <= {TARGET_RATIO}x: {verdict_ratio}); "
        f"peak RSS {rss_mb:.0f} MB (target <= {TARGET_RSS_MB} MB: {verdict_rss})"
    )
    if not same:
        print(f"  ours {check_ours}\n  base {check_base}")

    if args.keep:
        print(f"kept: {workdir} and the database")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
        drop_database(url)
    if not (same and ratio_ok and rss_ok):
        sys.exit(1)  # a missed target or a wrong result, for scripts that run the benchmark


if __name__ == "__main__":
    main()
