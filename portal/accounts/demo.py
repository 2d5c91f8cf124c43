"""Demo data for a newcomer: partners, customers with employees, and one login per role.

Passwords are generated per installation and printed, never fixed in the code.
"""

from __future__ import annotations

import io
import secrets

from sqlalchemy import func, select

from portal import accounts, jobs
from portal.extensions import db
from portal.ingest.profiles import save_mapping
from portal.ingest.receive import receive_upload
from portal.invoicing.build import run_period
from portal.invoicing.periods import Period
from portal.models import Customer, Employee, Partner
from portal.models.base import utcnow

PARTNERS = [
    ("state-university", "State University", "university", "USD"),
    ("codecraft-academy", "CodeCraft Academy", "business", "USD"),
    ("open-learning", "Open Learning Foundation", "nonprofit", "USD"),
]
CUSTOMERS = [
    ("ACME", "Acme Corporation", "corporation", "America/New_York", 1),
    ("GLOBEX", "Globex Inc.", "corporation", "America/Los_Angeles", 5),
    ("INITECH", "Initech Nonprofit Fund", "nonprofit", "Europe/London", 10),
]
# What the demo prints on its invoices: each customer's billing address, terms and formats.
BILLING = {
    "ACME": (
        "Acme Corporation\nAttn: Accounts Payable\n100 Main Street, Suite 400\nNew York, NY 10001",
        30,
        "en_US",
    ),
    "GLOBEX": ("Globex Inc.\nFinance Department\n2 Market Street\nSan Francisco, CA 94105", 45, "en_US"),
    "INITECH": ("Initech Nonprofit Fund\n10 Charity Lane\nLondon EC1A 1BB\nUnited Kingdom", 14, "en_GB"),
}
FIRST = ["Ada", "Grace", "Alan", "Katherine", "Edsger", "Barbara", "Donald", "Frances", "Linus", "Margaret"]
LAST = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Johnson",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "Torvalds",
    "Hamilton",
]


DEMO_PROFILE = {
    "format": "tuition-portal/mapping-profile",
    "version": 1,
    "columns": {
        "employee_external_id": "Employee ID",
        "employee_name": "Employee Name",
        "customer_code": "Employer",
        "partner_reference": "Transaction ID",
        "expense_type": "Fee Type",
        "amount": "Amount",
        "currency": "Currency",
        "service_date": "Date of Service",
        "description": "Course",
        "term": "Term",
    },
    "date_formats": ["%m/%d/%Y"],
    "decimal_separator": ".",
    "default_currency": "USD",
    "default_customer": None,
    "expense_type_synonyms": {"Books & Materials": "materials"},
    "sheet": None,
}
HEADER = (
    "Employee ID,Employee Name,Employer,Transaction ID,Fee Type,Amount,Currency,Date of Service,Course,Term\n"
)
COURSES = ["Intro to Accounting", "Data Analysis", "Project Management", "Business Writing", "Statistics I"]
TERM = "Fall 2026"
TYPES = [("Tuition", 120000), ("Books & Materials", 8999), ("Tutoring", 4500), ("Registration Fee", 2500)]


class DemoDataExists(Exception):
    pass


def _demo_file(slug: str, period, start: int, count: int, customers, extra: str = "") -> bytes:
    """A partner file of `count` plausible lines in `period` for the given customers' employees."""
    lines = [HEADER]
    days = (period.end - period.start).days + 1
    for n in range(count):
        code = customers[n % len(customers)]
        kind, cents = TYPES[n % len(TYPES)]
        amount = cents + (n * 137) % 5000
        day = period.start.replace(day=1 + (n * 7) % days)
        lines.append(
            f"{code[:3]}-{1001 + (n // len(customers)) % 12},,{code},{slug.upper()[:3]}-{start + n},{kind},"
            f'"{amount // 100:,}.{amount % 100:02d}",USD,{day:%m/%d/%Y},'
            f"{COURSES[n % len(COURSES)]},{TERM}\n"
        )
    return ("".join(lines) + extra.replace("{date}", f"{period.start.replace(day=5):%m/%d/%Y}")).encode()


def _demo_uploads(period) -> None:
    """A month of partner files: clean ones from every partner (one with an unknown employee and
    a few hundred lines for ACME), and one with problems that waits for the partner's review."""
    month = period.start.strftime("%B").lower()
    files = [
        ("state-university", f"{month}-statement.csv", 1, 600, ["ACME", "ACME", "GLOBEX", "INITECH"],
         "ACM-9999,Jamie Newhire,ACME,STA-900,Tuition,950.00,USD,{date},Statistics I,Fall 2026\n"),
        ("codecraft-academy", f"codecraft-{month}.csv", 1, 60, ["ACME", "GLOBEX"], ""),
        ("open-learning", f"open-learning-{month}.csv", 1, 30, ["INITECH", "GLOBEX"], ""),
        ("state-university", f"{month}-corrections.csv", 500, 10, ["ACME"],
         "ACM-1001,,ACME,STA-700,Tuition,12.345,USD,{date},Data Analysis,Fall 2026\n"
         "ACM-1002,,NOPE,STA-701,Tuition,100.00,USD,{date},Data Analysis,Fall 2026\n"
         "ACM-1003,,ACME,STA-1,Tuition,1.00,USD,{date},Data Analysis,Fall 2026\n"),
    ]  # fmt: skip
    for slug, name, start, count, customers, extra in files:
        partner = db.session.scalar(select(Partner).where(Partner.slug == slug))
        data = _demo_file(slug, period, start, count, customers, extra)
        upload = receive_upload(partner, io.BytesIO(data), name, user=None, max_bytes=10 * 1024 * 1024)
        db.session.commit()
        jobs.run_job(upload.job_id)


def _demo_invoices(period) -> None:
    """Build last month's invoice of every demo customer, so each awaits its contact's decision."""
    for code, *_ in CUSTOMERS:
        customer = db.session.scalar(select(Customer).where(Customer.code == code))
        run_period(customer.id, period.key)


def load_demo() -> list[tuple[str, str, str]]:
    """Create the demo data in one transaction; return (role, email, password) for each login."""
    if db.session.scalar(select(func.count(Partner.id))) or db.session.scalar(
        select(func.count(Customer.id))
    ):
        raise DemoDataExists("the database already has partners or customers")
    for slug, name, kind, currency in PARTNERS:
        accounts.create_partner(slug=slug, name=name, kind=kind, currency=currency)
    for index, (code, name, kind, tz, day) in enumerate(CUSTOMERS):
        address, terms, locale = BILLING[code]
        customer = accounts.create_customer(
            code=code,
            name=name,
            kind=kind,
            timezone=tz,
            invoice_day=day,
            billing_address=address,
            payment_terms_days=terms,
            locale=locale,
        )
        for n in range(12):
            first, last = FIRST[(n + index) % len(FIRST)], LAST[(n * 3 + index) % len(LAST)]
            db.session.add(
                Employee(
                    customer_id=customer.id,
                    external_id=f"{code[:3]}-{1001 + n}",
                    name=f"{first} {last}",
                    email=f"{first}.{last}@{code.lower()}.example".lower(),
                )
            )
    for slug, *_ in PARTNERS:
        save_mapping(db.session.scalar(select(Partner).where(Partner.slug == slug)), DEMO_PROFILE)
    logins = []
    for role, email, extra in [
        ("admin", "admin@example.com", {}),
        ("partner", "partner@example.com", {"partner_slug": "state-university"}),
        ("customer", "customer@example.com", {"customer_code": "ACME"}),
    ]:
        password = secrets.token_urlsafe(12)
        accounts.create_user(email=email, password=password, role=role, name=role.capitalize(), **extra)
        logins.append((role, email, password))
    db.session.commit()
    period = Period.of(utcnow().date()).previous
    _demo_uploads(period)
    _demo_invoices(period)
    return logins
