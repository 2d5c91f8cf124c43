"""Pages under load: production mode on this machine, 50 clients, requests/s and latency per URL.

    python bench/load.py [--clients 50] [--seconds 60] [--workers 4] [--employees 500] [--lines 10000]
                         [--database-url URL] [--redis-url URL] [--soak-minutes 0] [--keep]

DESTRUCTIVE for the target database: the PostgreSQL database (default
postgresql+psycopg://postgres@127.0.0.1:5432/bench_load) is DROPPED and CREATED again; its name must
contain "bench". Redis: the given database (default 14) is flushed.

Setup (not measured): migrate; one partner, one customer with `--employees` employees and a contact;
a partner file of `--lines` line items imported through the real ingest job; the customer's invoice
for 2026-10 built by the real build job (pending approval, as at month-end). Then production mode is
started the way README describes it: gunicorn (`--workers` sync workers) on `wsgi:app` plus one
`worker.py`, on PostgreSQL, Redis and local storage.

Measured:
  load        `--clients` threads, each logged in as the contact (its own session), for `--seconds`,
              each request one of: the invoice page, its lines fragment (htmx, the first page of the
              lines table), one employee's lines fragment, the contact's dashboard (/customer/);
              one more thread asks /healthz in a loop in the same run.
  one client  the same mix from a single client for 15 s (p95 is the single-user latency).
  soak        with --soak-minutes N: the load again for N minutes; the gunicorn workers' memory (RSS)
              is read at its start and end.

Printed: requests/s in all, p50/p95/p99 per URL, errors (any answer but 200, or a failed request),
/healthz beside them, the targets of issue 15 and whether each is met.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PASSWORD = "load-bench-Password-1"
TARGETS = {
    "requests_per_second": 80.0,  # across the invoice page, its two fragments and the dashboard
    "invoice_p95_ms": 750.0,
    "one_client_p95_ms": 60.0,
}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def recreate_database(url: str) -> None:
    name = make_url(url).database or ""
    if "bench" not in name:
        raise SystemExit(f"refusing to drop {name!r}: a benchmark database's name must contain 'bench'")
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


def drop_database(url: str) -> None:
    name = make_url(url).database
    admin = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def environment(args, instance: Path) -> dict:
    env = dict(os.environ)
    env.update(
        {
            "PORTAL_INSTANCE_PATH": str(instance),
            "DATABASE_URL": args.database_url,
            "REDIS_URL": args.redis_url,
            "STORAGE_URL": f"file://{instance / 'storage'}",
            "SECRET_KEY": "load-bench-secret-key-not-for-production",
            "LOGIN_RATE_LIMIT": "100000 per minute",
            "LOGIN_ACCOUNT_RATE_LIMIT": "100000 per minute",
            "RATELIMIT_STORAGE_URI": "memory://",
            "EMBEDDED_WORKER": "false",
        }
    )
    return env


def seed(env: dict, employees: int, lines: int) -> dict:
    """Partner, customer, employees, contact; the lines through the ingest job; the invoice built."""
    os.environ.update(env)
    from portal import accounts, create_app, jobs
    from portal.extensions import db
    from portal.ingest.profiles import save_mapping
    from portal.ingest.receive import receive_upload
    from portal.invoicing.build import run_period
    from portal.models import Employee, Invoice, Upload
    from tests.samples import HEADER, PROFILE

    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "portal", "db", "upgrade"],
        env=env, cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    app = create_app()
    with app.app_context():
        partner = accounts.create_partner(slug="load-u", name="Load University")
        customer = accounts.create_customer(code="LOAD", name="Load Test Corp", timezone="UTC")
        db.session.add_all(
            Employee(customer_id=customer.id, external_id=f"E{n:05d}", name=f"Employee {n:05d}")
            for n in range(employees)
        )
        accounts.create_user(email="contact@load.example", password=PASSWORD, role="customer",
                             customer_code="LOAD")  # fmt: skip
        save_mapping(partner, PROFILE)
        db.session.commit()
        kinds = ["Tuition", "Books & Materials", "Tutoring", "Fees"]
        rows = io.StringIO()
        rows.write(HEADER)
        for n in range(lines):
            day = 1 + n % 28
            rows.write(
                f"E{n % employees:05d},Employee,LOAD,L-{n},{kinds[n % 4]},{100 + n % 900}.{n % 100:02d},"
                f"USD,{day:02d}.10.2026,Course {n % 37},Fall 2026\n"
            )
        upload = receive_upload(partner, io.BytesIO(rows.getvalue().encode()), "load.csv", user=None,
                                max_bytes=10**9)  # fmt: skip
        db.session.commit()
        jobs.run_job(upload.job_id)
        upload = db.session.get(Upload, upload.id)
        assert upload.imported == lines, upload.counts()
        run_period(customer.id, "2026-10", None, True)
        db.session.commit()
        invoice = db.session.scalar(db.select(Invoice).where(Invoice.customer_id == customer.id))
        employee_id = db.session.scalar(db.select(Employee.id).where(Employee.customer_id == customer.id))
        return {"invoice_id": invoice.id, "employee_id": employee_id, "lines": invoice.line_count}


def start_production(env: dict, workers: int, port: int) -> list[subprocess.Popen]:
    log = open(Path(env["PORTAL_INSTANCE_PATH"]) / "servers.log", "w")  # noqa: SIM115 - lives as long as they do
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
         "--timeout", "120", "wsgi:app"],
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "worker.py"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(base + "/healthz", timeout=2).status_code == 200:
                return [web, worker]
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise SystemExit(f"the portal did not answer /healthz within 60 s; see {log.name}")


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def logged_in(base: str) -> requests.Session:
    session = requests.Session()
    page = session.get(base + "/login", timeout=30).text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'name="csrf_token" value="([^"]+)"', page
    )
    answer = session.post(
        base + "/login",
        data={"email": "contact@load.example", "password": PASSWORD, "csrf_token": token.group(1)},
        timeout=30,
        allow_redirects=False,
    )
    if answer.status_code != 302:
        raise SystemExit(f"login failed: {answer.status_code}")
    return session


def urls(seeded: dict) -> dict[str, tuple[str, dict]]:
    invoice, employee = seeded["invoice_id"], seeded["employee_id"]
    htmx = {"HX-Request": "true"}
    return {
        "invoice page": (f"/customer/invoices/{invoice}", {}),
        "lines fragment": (f"/customer/invoices/{invoice}/lines", htmx),
        "employee fragment": (f"/customer/invoices/{invoice}/employees/{employee}", htmx),
        "dashboard": ("/customer/", {}),
    }


def run_clients(base: str, targets: dict, clients: int, seconds: float, healthz: bool = True) -> dict:
    """`clients` threads asking the targets at random for `seconds`; latencies (s) per name."""
    sessions = [logged_in(base) for _ in range(clients)]
    results: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    names = list(targets)

    def client(session: requests.Session, seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < stop_at:
            name = rng.choice(names)
            path, headers = targets[name]
            began = time.perf_counter()
            try:
                ok = session.get(base + path, headers=headers, timeout=60).status_code == 200
            except requests.RequestException:
                ok = False
            took = time.perf_counter() - began
            with lock:
                results[name].append(took)
                if not ok:
                    errors[name] += 1

    def probe() -> None:
        plain = requests.Session()
        while time.monotonic() < stop_at:
            began = time.perf_counter()
            try:
                ok = plain.get(base + "/healthz", timeout=30).status_code == 200
            except requests.RequestException:
                ok = False
            with lock:
                results["/healthz"].append(time.perf_counter() - began)
                if not ok:
                    errors["/healthz"] += 1

    threads = [threading.Thread(target=client, args=(s, i)) for i, s in enumerate(sessions)]
    if healthz:
        threads.append(threading.Thread(target=probe))
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    return {"latencies": dict(results), "errors": dict(errors), "seconds": elapsed}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def report(title: str, run: dict, pages: list[str]) -> dict:
    print(f"\n{title} ({run['seconds']:.0f} s)")
    print(
        f"  {'URL':<20} {'requests':>9} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>7}"
    )
    summary = {}
    for name, values in sorted(run["latencies"].items()):
        rate = len(values) / run["seconds"]
        p50, p95, p99 = (percentile(values, p) * 1000 for p in (50, 95, 99))
        errors = run["errors"].get(name, 0)
        print(f"  {name:<20} {len(values):>9} {rate:>7.1f} {p50:>8.0f} {p95:>8.0f} {p99:>8.0f} {errors:>7}")
        summary[name] = {"count": len(values), "rate": rate, "p95_ms": p95, "errors": errors}
    pages_rate = sum(summary[n]["rate"] for n in pages if n in summary)
    print(f"  pages in all: {pages_rate:.1f} requests/s")
    summary["pages_rate"] = pages_rate
    summary["errors"] = sum(run["errors"].values())
    summary["median_ms"] = statistics.median(v for n in pages for v in run["latencies"].get(n, [])) * 1000
    return summary


def worker_rss_mb(web: subprocess.Popen) -> float:
    """The summed RSS of gunicorn's workers (the children of the arbiter)."""
    total = 0
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            status = (pid_dir / "status").read_text()
        except OSError:
            continue
        if re.search(rf"^PPid:\s+{web.pid}$", status, re.M):
            total += int(re.search(r"^VmRSS:\s+(\d+)", status, re.M).group(1))
    return total / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--employees", type=int, default=500)
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--soak-minutes", type=float, default=0)
    parser.add_argument("--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/bench_load")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--keep", action="store_true", help="keep the database and instance afterwards")
    args = parser.parse_args()

    import redis

    recreate_database(args.database_url)
    redis.Redis.from_url(args.redis_url).flushdb()
    instance = Path(tempfile.mkdtemp(prefix="bench-load-"))
    env = environment(args, instance)
    print(f"setup: {args.employees} employees, {args.lines} line items (ingest job), the invoice built")
    began = time.perf_counter()
    seeded = seed(env, args.employees, args.lines)
    print(
        f"  invoice {seeded['invoice_id']} with {seeded['lines']} lines ({time.perf_counter() - began:.1f} s)"
    )
    port = _free_port()
    processes = start_production(env, args.workers, port)
    base = f"http://127.0.0.1:{port}"
    targets = urls(seeded)
    pages = list(targets)
    try:
        run_clients(base, targets, 4, 5, healthz=False)  # warm-up: imports, caches, connections
        load = report(f"{args.clients} clients, gunicorn {args.workers} sync workers",
                      run_clients(base, targets, args.clients, args.seconds), pages)  # fmt: skip
        single = report("one client", run_clients(base, targets, 1, 15, healthz=False), pages)
        one_p95 = max(single[n]["p95_ms"] for n in pages if n in single)
        soak = None
        if args.soak_minutes:
            before = worker_rss_mb(processes[0])
            run_clients(base, targets, args.clients, args.soak_minutes * 60)
            soak = (before, worker_rss_mb(processes[0]))
    finally:
        stop(processes)
        if not args.keep:
            drop_database(args.database_url)
            shutil.rmtree(instance, ignore_errors=True)

    print("\ntargets (issue 15)")
    rate, invoice_p95, health = load["pages_rate"], load["invoice page"]["p95_ms"], load["/healthz"]
    checks = [
        ("requests/s across the pages", f"{rate:.1f}", f">= {TARGETS['requests_per_second']:.0f}",
         rate >= TARGETS["requests_per_second"]),
        ("invoice page p95", f"{invoice_p95:.0f} ms", f"<= {TARGETS['invoice_p95_ms']:.0f} ms",
         invoice_p95 <= TARGETS["invoice_p95_ms"]),
        ("one client p95 (worst page)", f"{one_p95:.0f} ms", f"<= {TARGETS['one_client_p95_ms']:.0f} ms",
         one_p95 <= TARGETS["one_client_p95_ms"]),
        ("errors (pages and /healthz)", str(load["errors"]), "0", load["errors"] == 0),
        ("/healthz beside them", f"{health['rate']:.1f} req/s, p95 {health['p95_ms']:.0f} ms", "-", True),
    ]  # fmt: skip
    if soak:
        checks.append(("worker memory over the soak", f"{soak[0]:.0f} -> {soak[1]:.0f} MB", "no growth",
                       soak[1] <= soak[0] * 1.1))  # fmt: skip
    for name, value, target, ok in checks:
        print(f"  {name:<30} {value:>28}  target {target:<10} {'pass' if ok else 'FAIL'}")


if __name__ == "__main__":
    main()
