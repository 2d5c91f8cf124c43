"""Render one of each email to HTML and text, and screenshot the HTML in Chromium at 600 and 390 px.

    .venv/bin/python docs/screenshots/make_email_previews.py [--out DIR] [--locale de_DE] [--currency EUR]
                                                             [--chromium /usr/bin/chromium] [--docs]

Unsaved model objects (no database), rendered by the same functions the jobs use; files land in
--out (default <temp dir>/mails) as <mail>.html, <mail>.txt and png/<mail>-<width>.png. --docs also copies
the awaiting-approval mail at 600 px to docs/screenshots/email-invoice.png.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from portal import create_app  # noqa: E402
from portal.core.mail import Attachment, render_mail  # noqa: E402
from portal.delivery.channels import delivered_mail_context  # noqa: E402
from portal.invoicing.notify import invoice_mail_context  # noqa: E402
from portal.models import Customer, Invoice, User  # noqa: E402

WIDTHS = (600, 390)
LINK = "https://invoices.example.com/set-password/eyJ1c2VyIjo0Mn0.ZxY9Qw.kq3Vb8s0aH1r2T"


def render_all(out: Path, locale: str, currency: str) -> None:
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": "sqlite://",
            "PORTAL_BASE_URL": "https://invoices.example.com",
            "COMPANY_NAME": "Brightpath Learning",
            "COMPANY_EMAIL": "billing@brightpath.example",
            "COMPANY_ADDRESS": "1 Learning Way\nSpringfield, IL 62701\nUnited States",
        }
    )
    with app.app_context():
        customer = Customer(name="Acme Manufacturing", code="ACME", locale=locale, payment_terms_days=30)
        facts = dict(
            id=42,
            number="ACME-2026-10-1",
            customer=customer,
            period_start=dt.date(2026, 10, 1),
            period_end=dt.date(2026, 10, 31),
            total_minor=123456,
            currency=currency,
            supplement=False,
        )
        pending = Invoice(**facts)
        approved = Invoice(**facts, due_on=dt.date(2026, 12, 5))
        files = [
            Attachment(f"ACME-2026-10-1.{kind}", b"", "application/octet-stream") for kind in ("pdf", "csv")
        ]
        user = User(email="pat.lee@acme.example")
        reason = "Two courses for employee E1042 are billed twice (lines 14 and 15).\nPlease remove one."
        mails = {
            "invoice_awaiting_approval": ("invoice_awaiting_approval", invoice_mail_context(pending)),
            "invoice_reminder": ("invoice_reminder", {"days_waiting": 6, **invoice_mail_context(pending)}),
            "invoice_denied": (
                "invoice_denied",
                {
                    "reason": reason,
                    "denied_by": user.email,
                    **invoice_mail_context(pending, path="/admin/invoices/42"),
                },
            ),
            "invoice_delivered": ("invoice_delivered", delivered_mail_context(approved, files)),
            "password_invite": (
                "password_invite",
                {"user": user, "url": LINK, "hours": 168, "days": 7, "invited_by": "Jordan Admin"},
            ),
            "password_reset": ("password_reset", {"user": user, "url": LINK, "hours": 2, "days": 0}),
        }
        for name, (template, context) in mails.items():
            text, html = render_mail(template, **context)
            (out / f"{name}.html").write_text(html)
            (out / f"{name}.txt").write_text(text)


def screenshot_all(out: Path, chromium: str) -> None:
    (out / "png").mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        for width in WIDTHS:
            page = browser.new_page(viewport={"width": width, "height": 800})
            for html in sorted(out.glob("*.html")):
                page.goto(html.as_uri())
                page.screenshot(path=str(out / "png" / f"{html.stem}-{width}.png"), full_page=True)
                if page.evaluate("document.documentElement.scrollWidth") > width:
                    print(f"{html.stem} scrolls sideways at {width} px")
            page.close()
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "mails")
    parser.add_argument("--locale", default="en_US")
    parser.add_argument("--currency", default="USD")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--docs", action="store_true", help="update docs/screenshots/email-invoice.png")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    render_all(args.out, args.locale, args.currency)
    screenshot_all(args.out, args.chromium)
    if args.docs:
        shutil.copy(
            args.out / "png" / "invoice_awaiting_approval-600.png",
            ROOT / "docs/screenshots/email-invoice.png",
        )
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
