"""PDF benchmark: 1,000- and 10,000-line invoices through the real rendering code, next to Chromium.

    python bench/pdf.py [--lines 1000 10000] [--repeat 3] [--keep] [--no-chromium] [--no-one-shot]

Setup (not measured): a fresh SQLite database in a temporary folder, migrated; one customer with
employees (about 20 lines each), line items inserted in bulk, the invoice built with
`run_period` and approved with `lifecycle.approve`, exactly as in production.

What is measured, for each invoice:
  ours      invoice_html() (query + Jinja, in this process) + render_pdf_capped() (WeasyPrint
            PDF/A-3b with the CSV attached, in a capped child of the render server, as the render
            job does). The render server is started first and not timed, as worker.py starts it
            when it starts. Seconds are wall time of both; peak RSS is the child's own ru_maxrss.
  one-shot  the same with RENDER_SERVER=false: a fresh interpreter per render, which also pays
            for starting Python and importing WeasyPrint (shown for comparison; --no-one-shot).
  chromium  the same HTML file printed by headless Chromium (/usr/bin/chromium --print-to-pdf),
            wall time including its start: the command-line print starts a browser per PDF, while
            ours forks a child of the already running render server, as production does (the
            one-shot line shows ours paying for a fresh interpreter too). Peak RSS is ru_maxrss of
            the largest waited-for descendant (RUSAGE_CHILDREN), a lower bound.
Where Playwright is installed (pip install playwright; it drives /usr/bin/chromium), one more line
shows, for information, a Chromium kept running and printing from a new page each time: no browser
start-up, as a service built on Chromium would run. The target compares with the command line.
Each invoice is rendered --repeat times (default 3), the sides taking turns so that both see the same
machine load; the figures are the medians (peak RSS: the largest), and the ratio is of the medians.
Targets: 1,000 lines at most Chromium's time (ratio <= 1.0) and under 400 MB; 10,000 lines under
120 s, under 1 GB and (issue 15) at most twice Chromium's time (ratio <= 2.0), both measured in
the same run. The baseline printed next to each ratio is the last figure before issue 15's work
(README, Benchmarks).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ingest import COURSES, FIRST, LAST, TERMS, make_app  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
TARGETS = {1000: {"ratio": 1.0, "rss_mb": 400}, 10000: {"seconds": 120, "rss_mb": 1024, "ratio": 2.0}}
# Before issue 15 (README, Benchmarks; quiet machine): seconds ours / Chromium's command-line print.
BASELINE = {1000: (0.81, 0.79), 10000: (6.6, 1.9)}
EXPENSE_TYPES = ("tuition", "materials", "tutoring", "fees", "other")


def setup(app, sizes: list[int]) -> dict[int, int]:
    """One customer per size with its lines, built and approved; returns {size: invoice id}."""
    from flask_migrate import upgrade
    from sqlalchemy import insert, select

    from portal import accounts
    from portal.extensions import db
    from portal.invoicing import lifecycle
    from portal.invoicing.build import run_period
    from portal.models import Employee, Invoice, LineItem, Upload

    rng = random.Random(20261101)
    invoices = {}
    with app.app_context():
        upgrade()
        partners = []
        for p in (1, 2, 3):
            partner = accounts.create_partner(slug=f"bench-partner-{p}", name=f"Bench Partner University {p}")
            upload = Upload(
                partner_id=partner.id,
                filename=f"partner-{p}.csv",
                storage_key=f"b/{p}",
                sha256="0" * 64,
                size_bytes=1,
            )
            db.session.add(upload)
            db.session.flush()
            partners.append((partner.id, upload.id))
        now = dt.datetime.now(dt.UTC)
        for size in sizes:
            customer = accounts.create_customer(code=f"BENCH{size}", name=f"Bench Customer {size} Ltd")
            employees = max(1, size // 20)
            db.session.execute(
                insert(Employee),
                [
                    {
                        "customer_id": customer.id,
                        "external_id": f"E{e:05d}",
                        "name": f"{FIRST[e % len(FIRST)]} {LAST[(e // len(FIRST)) % len(LAST)]} {e}",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for e in range(employees)
                ],
            )
            employee_ids = list(
                db.session.scalars(select(Employee.id).where(Employee.customer_id == customer.id))
            )
            rows = []
            for i in range(size):
                partner_id, upload_id = rng.choice(partners)
                amount = rng.randint(100, 900_000) * (-1 if rng.random() < 0.03 else 1)
                rows.append(
                    {
                        "partner_id": partner_id,
                        "customer_id": customer.id,
                        "employee_id": rng.choice(employee_ids),
                        "partner_reference": f"B{size}-{i:06d}",
                        "expense_type": rng.choice(EXPENSE_TYPES),
                        "amount_minor": amount,
                        "currency": "USD",
                        "service_date": dt.date(2026, 10, rng.randint(1, 31)),
                        "description": rng.choice(COURSES),
                        "term": rng.choice(TERMS) or None,
                        "upload_id": upload_id,
                        "source_row": i + 2,
                        "fingerprint": "0" * 64,
                        "created_at": now,
                    }
                )
            db.session.execute(insert(LineItem), rows)
            db.session.commit()
            run_period(customer.id, "2026-10", force=True)
            invoice = db.session.scalar(select(Invoice).where(Invoice.customer_id == customer.id))
            lifecycle.approve(invoice, by=None)
            db.session.commit()
            invoices[size] = invoice.id
    return invoices


def ours(app, invoice_id: int, *, use_server: bool = True) -> tuple[float, float, str, int, int]:
    """The real path: HTML in the app, PDF in the sandbox child. Returns seconds, MB, html, pages, bytes."""
    from pypdf import PdfReader

    from portal.rendering.csv_export import invoice_csv, line_rows
    from portal.rendering.pdf import invoice_html, our_details_from_config
    from portal.rendering.sandbox import render_pdf_capped

    with app.app_context():
        start = time.perf_counter()
        rows = line_rows(invoice_id)  # as the render job does: read once for both files
        csv_bytes = invoice_csv(invoice_id, rows)
        html = invoice_html(invoice_id, our_details=our_details_from_config(), rows=rows)
        result = render_pdf_capped(
            html, csv_bytes, filename_stem=f"bench-{invoice_id}", use_server=use_server
        )
        seconds = time.perf_counter() - start
    pages = len(PdfReader(__import__("io").BytesIO(result.pdf)).pages)
    return seconds, result.peak_rss_kb / 1024, html, pages, len(result.pdf)


class WarmChromium:
    """For information only: one Chromium kept running (Playwright, when installed), printing each
    PDF from a new page, so it pays no browser start-up: what a service built on Chromium would do."""

    def __init__(self):
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        self._browser = self._playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        self.seconds("<html><body>warm-up</body></html>")

    def seconds(self, html: str) -> float:
        start = time.perf_counter()
        page = self._browser.new_page()
        page.set_content(html)
        page.pdf(prefer_css_page_size=True)
        page.close()
        return time.perf_counter() - start

    def close(self) -> None:
        self._browser.close()
        self._playwright.stop()


def chromium(html: str, workdir: Path) -> tuple[float, float, int]:
    """Headless Chromium printing the same HTML; returns seconds, MB (lower bound) and pages."""
    from pypdf import PdfReader

    page = workdir / "invoice.html"
    out = workdir / "chromium.pdf"
    page.write_text(html, encoding="utf-8")
    out.unlink(missing_ok=True)
    profile = tempfile.mkdtemp(prefix="bench-chromium-", dir=workdir)
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={profile}",
        f"--print-to-pdf={out}",
        "--no-pdf-header-footer",
        page.as_uri(),
    ]
    # A small Python wrapper runs Chromium so that RUSAGE_CHILDREN covers Chromium only, not our child.
    wrapper = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, capture_output=True);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    start = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - fixed command
        [sys.executable, "-c", wrapper, *command], check=True, capture_output=True, timeout=600
    )
    seconds = time.perf_counter() - start
    rss = int(done.stdout.split()[-1]) / 1024
    return seconds, rss, len(PdfReader(str(out)).pages)


def _spread(values: list[float]) -> str:
    return f"(median of {len(values)}: {', '.join(f'{v:.2f}' for v in values)})" if len(values) > 1 else ""


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds per invoice; each side reports its median (default 3)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (database, PDFs)")
    parser.add_argument("--no-chromium", action="store_true")
    parser.add_argument("--no-one-shot", action="store_true", help="skip the one-shot comparison")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-pdf-"))
    app = make_app(f"sqlite:///{workdir / 'bench.db'}", workdir)
    print(f"setup: {', '.join(str(n) for n in args.lines)}-line invoices in {workdir} ...", flush=True)
    invoices = setup(app, args.lines)
    use_chromium = not args.no_chromium and Path(CHROMIUM).exists()
    failed = False
    if use_chromium:  # warm the disk cache so neither side pays for a cold start alone
        chromium("<html><body>warm-up</body></html>", workdir)
    from portal.rendering import sandbox

    sandbox.start_server()  # as worker.py does when it starts (not timed)
    warm = None
    if use_chromium:
        try:
            warm = WarmChromium()
        except ImportError:
            print("(Playwright is not installed: no figure for a Chromium kept running)")
    for size in args.lines:
        ours_s, ours_mb, one_s, one_mb, chrome_s, chrome_mb = [], [], [], [], [], []
        for _ in range(max(1, args.repeat)):  # the sides take turns, so both see the same load
            seconds, rss_mb, html, pages, pdf_bytes = ours(app, invoices[size])
            ours_s.append(seconds)
            ours_mb.append(rss_mb)
            if not args.no_one_shot:
                seconds, rss_mb, *_ = ours(app, invoices[size], use_server=False)
                one_s.append(seconds)
                one_mb.append(rss_mb)
            if use_chromium:
                seconds, rss_mb, c_pages = chromium(html, workdir)
                chrome_s.append(seconds)
                chrome_mb.append(rss_mb)
        seconds, rss_mb = statistics.median(ours_s), max(ours_mb)
        print(f"\n{size:,} lines ({pages} pages, {pdf_bytes / 1024:.0f} KiB PDF/A-3b with CSV)")
        print(
            f"  ours      {seconds:8.2f} s   peak RSS {rss_mb:7.0f} MB  "
            f"render server's child {_spread(ours_s)}"
        )
        if one_s:
            print(
                f"  one-shot  {statistics.median(one_s):8.2f} s   peak RSS {max(one_mb):7.0f} MB  "
                f"fresh interpreter, for comparison {_spread(one_s)}"
            )
        target = TARGETS.get(size, {})
        checks = []
        if "rss_mb" in target:
            checks.append((f"RSS < {target['rss_mb']} MB", rss_mb < target["rss_mb"]))
        if "seconds" in target:
            checks.append((f"time < {target['seconds']} s", seconds < target["seconds"]))
        if chrome_s:
            c_seconds = statistics.median(chrome_s)
            ratio = seconds / c_seconds
            print(
                f"  chromium  {c_seconds:8.2f} s   peak RSS {max(chrome_mb):7.0f} MB+ "
                f"({c_pages} pages, print-to-pdf) {_spread(chrome_s)}"
            )
            print(f"  ratio     {ratio:8.2f}   (ours / chromium, medians)")
            if size in BASELINE:
                b_ours, b_chrome = BASELINE[size]
                print(
                    f"  baseline  {b_ours:8.2f} s vs chromium {b_chrome:.2f} s, ratio "
                    f"{b_ours / b_chrome:.2f} (before issue 15, README)"
                )
            if "ratio" in target:
                checks.append((f"ratio <= {target['ratio']} (x chromium)", ratio <= target["ratio"]))
        if warm is not None:
            w_seconds = [warm.seconds(html) for _ in range(max(1, args.repeat))]
            w_median = statistics.median(w_seconds)
            print(
                f"  (for information: a Chromium kept running prints it in {w_median:.2f} s, "
                f"ratio {seconds / w_median:.2f} {_spread(w_seconds)})"
            )
        for label, ok in checks:
            failed |= not ok
            print(f"  {'PASS' if ok else 'FAIL'}  {label}")
    if warm is not None:
        warm.close()
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
