"""Page-view benchmark: invoice views recorded in the audit chain (under its lock) vs beside it.

    python bench/page_views.py [--database-url URL] [--threads 16] [--views 150] [--hold-ms 20] [--keep]

DESTRUCTIVE for the target database: it is DROPPED and CREATED again (default
postgresql+psycopg://postgres@127.0.0.1:5432/bench_page_views); its name must contain "bench".

Both modes run in the same process, one after the other, against the same database: `--threads`
threads each record `--views` views of an invoice and commit each (what the invoice page does),
while one more thread keeps appending chained events and holds the chain's lock `--hold-ms` each
time (a build or approvals at month end). Printed: views per second and p50/p95 per view for
  chained   audit.record("invoice.viewed") + commit: the page view takes the chain's lock (before)
  beside    audit.record_view("invoice.viewed") + commit: a plain INSERT (issue 15)
then the time to move the waiting views into the chain, and `audit verify` over the result.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ingest import drop_database, reset_database  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_page_views"


def make_app(url: str, workdir: Path, pool_size: int):
    import os

    os.environ["PORTAL_INSTANCE_PATH"] = str(workdir / "instance")
    from portal import create_app

    return create_app(
        {
            "SECRET_KEY": "bench-secret-key",
            "SQLALCHEMY_DATABASE_URI": url,
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": pool_size, "max_overflow": 0},
            "STORAGE_URL": f"file://{workdir / 'storage'}",
            "MAIL_OUTBOX_DIR": str(workdir / "mail"),
            "RATELIMIT_STORAGE_URI": "memory://",
            "EMBEDDED_WORKER": False,
            "REDIS_URL": None,
        }
    )


def run_mode(app, invoice_id: int, mode: str, threads: int, views: int, hold_ms: int) -> dict:
    from portal.core import audit
    from portal.extensions import db
    from portal.models import Invoice

    latencies: list[float] = []
    lock = threading.Lock()
    stop = threading.Event()

    def viewer():
        mine = []
        with app.app_context():
            invoice = db.session.get(Invoice, invoice_id)
            for _ in range(views):
                start = time.perf_counter()
                if mode == "chained":
                    audit.record("invoice.viewed", subject=invoice)
                else:
                    audit.record_view("invoice.viewed", subject=invoice)
                db.session.commit()
                mine.append(time.perf_counter() - start)
        with lock:
            latencies.extend(mine)

    def chain_writer():
        with app.app_context():
            while not stop.is_set():
                audit.record("bench.chained_write")
                db.session.flush()  # takes the chain's lock until commit
                time.sleep(hold_ms / 1000)
                db.session.commit()

    writer = threading.Thread(target=chain_writer)
    workers = [threading.Thread(target=viewer) for _ in range(threads)]
    writer.start()
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    stop.set()
    writer.join()
    latencies.sort()
    return {
        "rate": len(latencies) / elapsed,
        "p50": statistics.median(latencies) * 1000,
        "p95": latencies[int(len(latencies) * 0.95) - 1] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--views", type=int, default=150)
    parser.add_argument("--hold-ms", type=int, default=20)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    reset_database(args.database_url)
    workdir = Path(tempfile.mkdtemp(prefix="bench-views-"))
    app = make_app(args.database_url, workdir, args.threads + 4)
    from flask_migrate import upgrade

    from portal import accounts
    from portal.core import audit, audit_chain
    from portal.extensions import db
    from portal.models import AuditEvent, Invoice, PendingView

    with app.app_context():
        upgrade()
    with app.app_context():
        customer = accounts.create_customer(code="ACME", name="Acme Corp", timezone="UTC")
        db.session.flush()
        invoice = Invoice(
            customer_id=customer.id, number="ACME-2026-10-1", period_start=dt.date(2026, 10, 1),
            period_end=dt.date(2026, 10, 31), currency="USD",
        )  # fmt: skip
        db.session.add(invoice)
        db.session.commit()
        invoice_id = invoice.id

    results = {}
    for mode in ("chained", "beside"):
        results[mode] = run_mode(app, invoice_id, mode, args.threads, args.views, args.hold_ms)
        r = results[mode]
        print(f"{mode:8} {r['rate']:8.1f} views/s   p50 {r['p50']:7.1f} ms   p95 {r['p95']:7.1f} ms")
    ratio = results["beside"]["rate"] / results["chained"]["rate"]
    print(
        f"beside/chained throughput: {ratio:.1f}x "
        f"({args.threads} viewers, one chained writer holding {args.hold_ms} ms)"
    )

    with app.app_context():
        waiting = db.session.query(PendingView).count()
        start = time.perf_counter()
        audit.absorb_views()
        absorbed = time.perf_counter() - start
        views = db.session.query(AuditEvent).filter(AuditEvent.action == "invoice.viewed").count()
        ok, count, broken = audit_chain.verify_chain()
    print(f"absorbed {waiting} waiting views into the chain in {absorbed * 1000:.0f} ms")
    print(
        f"chain: {views} invoice.viewed events, "
        f"verify {'ok' if ok else f'BROKEN at {broken}'} ({count} events)"
    )
    if not args.keep:
        with app.app_context():
            db.engine.dispose()
        drop_database(args.database_url)
    if not ok or views != 2 * args.threads * args.views:
        sys.exit(1)


if __name__ == "__main__":
    main()
