"""Demo data for a newcomer: partners, customers with employees, and one login per role.

Passwords are generated per installation and printed, never fixed in the code.
"""

from __future__ import annotations

import secrets

from sqlalchemy import func, select

from portal import accounts
from portal.extensions import db
from portal.ingest import pipeline
from portal.models import Customer, Employee, Partner

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
TYPES = [("Tuition", 120000), ("Books & Materials", 8999), ("Tutoring", 4500), ("Registration Fee", 2500)]


class DemoDataExists(Exception):
    pass


def _demo_file(slug: str, start: int, count: int, extra: str = "") -> bytes:
    """A partner file of `count` plausible lines for ACME and GLOBEX employees, plus `extra` rows."""
    lines = [HEADER]
    for n in range(count):
        code, prefix = ("ACME", "ACM") if n % 3 else ("GLOBEX", "GLO")
        kind, cents = TYPES[n % len(TYPES)]
        amount = cents + (n * 137) % 5000
        lines.append(
            f"{prefix}-{1001 + n % 12},,{code},{slug.upper()[:3]}-{start + n},{kind},"
            f'"{amount // 100:,}.{amount % 100:02d}",USD,10/{1 + n % 28:02d}/2026,'
            f"{COURSES[n % len(COURSES)]},Fall 2026\n"
        )
    return ("".join(lines) + extra).encode()


def _demo_uploads() -> None:
    """Send a clean file (with one unknown employee) and a file with problems, as a partner would."""
    import io

    from portal import jobs
    from portal.ingest import pipeline

    partner = db.session.scalar(select(Partner).where(Partner.slug == "state-university"))
    clean = _demo_file(
        partner.slug,
        1,
        40,
        extra="ACM-9999,Jamie Newhire,ACME,STA-900,Tuition,950.00,USD,10/20/2026,Statistics I,Fall 2026\n",
    )
    flawed = _demo_file(
        partner.slug,
        100,
        10,
        extra=(
            "ACM-1001,,ACME,STA-200,Tuition,12.345,USD,10/05/2026,Data Analysis,Fall 2026\n"
            "ACM-1002,,NOPE,STA-201,Tuition,100.00,USD,10/05/2026,Data Analysis,Fall 2026\n"
            "ACM-1003,,ACME,STA-1,Tuition,1.00,USD,10/05/2026,Data Analysis,Fall 2026\n"
        ),
    )
    for name, data in (("october-statement.csv", clean), ("october-corrections.csv", flawed)):
        upload = pipeline.receive_upload(
            partner, io.BytesIO(data), name, user=None, max_bytes=10 * 1024 * 1024
        )
        db.session.commit()
        jobs.run_job(upload.job_id)


def load_demo() -> list[tuple[str, str, str]]:
    """Create the demo data in one transaction; return (role, email, password) for each login."""
    if db.session.scalar(select(func.count(Partner.id))) or db.session.scalar(
        select(func.count(Customer.id))
    ):
        raise DemoDataExists("the database already has partners or customers")
    for slug, name, kind, currency in PARTNERS:
        accounts.create_partner(slug=slug, name=name, kind=kind, currency=currency)
    for index, (code, name, kind, tz, day) in enumerate(CUSTOMERS):
        customer = accounts.create_customer(code=code, name=name, kind=kind, timezone=tz, invoice_day=day)
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
        pipeline.save_mapping(db.session.scalar(select(Partner).where(Partner.slug == slug)), DEMO_PROFILE)
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
    _demo_uploads()
    return logins
