"""Regenerate docs/screenshots/invoice-pdf-page1.png: page 1 of a realistic demo invoice PDF.

    .venv/bin/python docs/screenshots/make_pdf_preview.py [--out DIR] [--lines N] [--locale de_DE]
                                                           [--credit] [--all-pages]

A throwaway SQLite database: one customer with a billing address, six employees, lines from three
partners, one line disputed and held off at approval; the invoice is
built and approved as in production, rendered by the real code, and page 1 is drawn at 100 dpi
with pdftoppm (poppler-utils). --out keeps the PDF and PNGs elsewhere (for looking at every page).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.ingest import make_app  # noqa: E402

PEOPLE = [
    ("E1001", "Ana Souza"),
    ("E1002", "Bo Chen"),
    ("E1003", "Dana Okafor"),
    ("E1004", "Fatima Garcia"),
    ("E1005", "Kofi Novak"),
    ("E1006", "Lena Müller"),
]
PARTNERS = [
    ("state-u", "State University of Springfield"),
    ("code-camp", "Code Camp Academy"),
    ("lang-school", "Lingua Language School International"),
]
ADDRESSES = {
    "en_US": "Attn: Accounts Payable\n500 Harbor Boulevard, Suite 1200\nSeattle, WA 98104\nUnited States",
    "de_DE": "Buchhaltung\nHafenstraße 12\n20457 Hamburg\nDeutschland",
}
COURSES = [
    ("tuition", "MBA Core: Managerial Finance", "Fall 2026"),
    ("tuition", "Data Structures and Algorithms", "Fall 2026"),
    ("materials", "Textbooks and course pack", None),
    ("tutoring", "Statistics tutoring, 4 sessions", None),
    ("fees", "Registration fee", "Fall 2026"),
    ("tuition", "Business German B2, evening course with weekly conversation practice", "Autumn term"),
    ("other", "Exam fee: AWS Solutions Architect", None),
]


def build_demo(app, *, lines: int, locale: str, credit: bool) -> int:
    """The demo customer, partners, employees and lines; the invoice approved with one line held."""
    from flask_migrate import upgrade
    from sqlalchemy import select

    from portal import accounts
    from portal.extensions import db
    from portal.invoicing import disputes
    from portal.invoicing.build import run_period
    from portal.models import Employee, Invoice, LineItem, Upload

    rng = random.Random(13)
    with app.app_context():
        upgrade()
        partners = []
        for slug, name in PARTNERS:
            partner = accounts.create_partner(slug=slug, name=name)
            upload = Upload(
                partner_id=partner.id,
                filename=f"{slug}-2026-10.csv",
                storage_key=slug,
                sha256="0" * 64,
                size_bytes=1,
            )
            db.session.add(upload)
            db.session.flush()
            partners.append((partner.id, upload.id))
        customer = accounts.create_customer(
            code="NORTHWIND",
            name="Northwind Traders GmbH" if locale == "de_DE" else "Northwind Traders Inc.",
            billing_address=ADDRESSES.get(locale, ADDRESSES["en_US"]),
            payment_terms_days=30,
            locale=locale,
        )
        employees = []
        for external_id, name in PEOPLE:
            employee = Employee(customer_id=customer.id, external_id=external_id, name=name)
            db.session.add(employee)
            db.session.flush()
            employees.append(employee.id)
        items = []
        for i in range(lines):
            kind, description, term = rng.choice(COURSES)
            partner_id, upload_id = partners[i % len(partners)] if i < 6 else rng.choice(partners)
            amount = rng.choice([12000, 45000, 89900, 125000, 250000, 7950, 31500])
            if credit:
                amount = -amount
            day = dt.date(2026, 10, rng.randint(1, 31))
            item = LineItem(
                partner_id=partner_id,
                customer_id=customer.id,
                employee_id=employees[i % len(employees)],
                partner_reference=f"DEMO-{i:05d}",
                expense_type=kind,
                amount_minor=amount,
                currency="USD" if locale != "de_DE" else "EUR",
                service_date=day,
                description=description,
                term=term,
                upload_id=upload_id,
                source_row=i + 2,
                fingerprint="0" * 64,
            )
            db.session.add(item)
            items.append(item)
        db.session.commit()
        run_period(customer.id, "2026-10", force=True)
        db.session.commit()
        invoice = db.session.scalar(
            select(Invoice).where(Invoice.customer_id == customer.id).order_by(Invoice.id.desc())
        )
        held = db.session.scalar(
            select(LineItem).where(LineItem.invoice_id == invoice.id).order_by(LineItem.id.desc())
        )
        disputes.flag_line(invoice, held.id, by=None, comment="Not enrolled in this course")
        disputes.approve_undisputed(invoice, by=None)
        db.session.commit()
        return invoice.id


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, help="folder for the PDF and every page as PNG")
    parser.add_argument("--lines", type=int, default=24)
    parser.add_argument("--locale", default="en_US")
    parser.add_argument("--credit", action="store_true", help="all lines negative: a credit note")
    parser.add_argument("--dpi", type=int, default=100)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="pdf-preview-"))
    try:
        app = make_app(f"sqlite:///{workdir / 'demo.db'}", workdir)
        app.config.update(
            COMPANY_NAME="Tuition Invoice Portal",
            COMPANY_EMAIL="billing@tuition-portal.example",
        )
        invoice_id = build_demo(app, lines=args.lines, locale=args.locale, credit=args.credit)
        from portal.rendering.csv_export import invoice_csv
        from portal.rendering.pdf import invoice_html, render_pdf

        with app.app_context():
            pdf = render_pdf(invoice_html(invoice_id), invoice_csv(invoice_id), filename_stem="demo")
        pdftoppm = shutil.which("pdftoppm") or "/usr/bin/pdftoppm"  # poppler-utils
        out = args.out or workdir
        out.mkdir(parents=True, exist_ok=True)
        (out / "invoice.pdf").write_bytes(pdf)
        if args.out:
            subprocess.run(  # noqa: S603 - our own arguments
                [pdftoppm, "-png", "-r", str(args.dpi), out / "invoice.pdf", out / "p"], check=True
            )
            print(f"{out / 'invoice.pdf'} and its pages as {out}/p-*.png")
        else:
            target = ROOT / "docs" / "screenshots" / "invoice-pdf-page1"
            subprocess.run(  # noqa: S603 - our own arguments
                [
                    pdftoppm,
                    "-png",
                    "-r",
                    str(args.dpi),
                    "-f",
                    "1",
                    "-l",
                    "1",
                    "-singlefile",
                    out / "invoice.pdf",
                    target,
                ],
                check=True,
            )
            print(f"{target}.png")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
