"""Builders and look-ups shared by the tests: line items, invoices, channels, users and jobs.

Test modules import helpers from here (or from tests/samples.py), never from another test module
or a conftest; fixtures that wrap these live in tests/conftest.py or a folder's conftest.py.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import time

from sqlalchemy import select

from portal.extensions import db
from portal.invoicing import lifecycle
from portal.invoicing.build import run_period
from portal.models import (
    AuditEvent,
    ChannelKind,
    Customer,
    Delivery,
    DeliveryChannel,
    Employee,
    Invoice,
    JobRecord,
    LineItem,
    Partner,
    User,
)

PASSWORD = "correct horse battery staple"

# --- line items and invoices -------------------------------------------------------------------

_refs = itertools.count(1)


class Billing:
    """What the `billing` fixture returns: its tenants' ids and a way to add imported line items."""

    def __init__(self, app, ids):
        self.app = app
        self.ids = ids

    def add(self, amount_minor, service_date, *, customer="ACME", employee="E1", currency="USD",
            partner="state-u", expense_type="tuition", ref=None):  # fmt: skip
        """Insert one imported line item; returns its id."""
        with self.app.app_context():
            customer_id = db.session.scalar(select(Customer.id).where(Customer.code == customer))
            employee_id = db.session.scalar(
                select(Employee.id).where(
                    Employee.customer_id == customer_id, Employee.external_id == employee
                )
            )
            partner_id = db.session.scalar(select(Partner.id).where(Partner.slug == partner))
            line = LineItem(
                partner_id=partner_id,
                customer_id=customer_id,
                employee_id=employee_id,
                partner_reference=ref or f"REF-{next(_refs)}",
                expense_type=expense_type,
                amount_minor=amount_minor,
                currency=currency,
                service_date=dt.date.fromisoformat(service_date),
                description="Course",
                upload_id=self.ids["upload"][partner],
                source_row=2,
                fingerprint="x" * 64,
            )
            db.session.add(line)
            db.session.commit()
            return line.id


def build(app, code="ACME", period="2026-10", force=True):
    """Run the invoice build for customer `code` and `period`; returns run_period's result."""
    with app.app_context():
        customer_id = db.session.scalar(select(Customer.id).where(Customer.code == code))
        return run_period(customer_id, period, force=force)


def build_invoice(app, *, code="ACME", period="2026-10", approve=True) -> int:
    """Build the period's invoice for `code` (and approve it); returns its id."""
    with app.app_context():
        customer_id = db.session.scalar(select(Customer.id).where(Customer.code == code))
        run_period(customer_id, period, force=True)
        db.session.commit()
        invoice = db.session.scalar(
            select(Invoice).where(Invoice.customer_id == customer_id).order_by(Invoice.id.desc())
        )
        if approve:
            lifecycle.approve(invoice, by=None)
            db.session.commit()
        return invoice.id


def invoice_status(app, invoice_id) -> str:
    with app.app_context():
        return db.session.get(Invoice, invoice_id).status.value


def line_id_by_amount(app, amount_minor) -> int:
    with app.app_context():
        return db.session.scalar(select(LineItem.id).where(LineItem.amount_minor == amount_minor))


# --- delivery ----------------------------------------------------------------------------------

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\nfake invoice body\x00\xff\n%%EOF\n"
CSV = b"number,employee,amount\r\nACME-2026-10-1,Person 1 (E1),12.34\r\n"


def add_channel(app, kind: str, target: str = "", secret: str | None = None, code: str = "ACME") -> int:
    with app.app_context():
        customer_id = db.session.scalar(select(Customer.id).where(Customer.code == code))
        channel = DeliveryChannel(
            customer_id=customer_id, kind=ChannelKind(kind), target=target, secret=secret, enabled=True
        )
        db.session.add(channel)
        db.session.commit()
        return channel.id


def delivery_for(app, invoice_id: int, channel_id: int) -> Delivery:
    with app.app_context():
        delivery = db.session.scalar(
            select(Delivery).where(Delivery.invoice_id == invoice_id, Delivery.channel_id == channel_id)
        )
        if delivery is not None:
            db.session.expunge(delivery)
        return delivery


# --- users, audit events and mail --------------------------------------------------------------


def events(app, action):
    with app.app_context():
        return db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()


def user_by_email(app, email):
    with app.app_context():
        return db.session.scalar(select(User).where(User.email == email))


LINK_RE = re.compile(r"https?://[^\s\"<>]+/set-password/([A-Za-z0-9_.\-]+)")


def link_token(message_bytes: bytes) -> str:
    """The token of the set-password link in a sent message (quoted-printable soft breaks undone)."""
    match = LINK_RE.search(message_bytes.decode("utf-8", "replace").replace("=\r\n", "").replace("=\n", ""))
    assert match, "no set-password link in the message"
    return match.group(1)


# --- jobs --------------------------------------------------------------------------------------


def job(app, job_id: str) -> JobRecord:
    with app.app_context():
        record = db.session.get(JobRecord, job_id)
        db.session.expunge(record)
        return record


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    """Poll `predicate` until it returns something truthy (returned), or fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
