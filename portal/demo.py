"""Demo data for a newcomer: partners, customers with employees, and one login per role.

Passwords are generated per installation and printed, never fixed in the code.
"""

from __future__ import annotations

import secrets

from sqlalchemy import func, select

from portal import accounts
from portal.extensions import db
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


class DemoDataExists(Exception):
    pass


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
    return logins
