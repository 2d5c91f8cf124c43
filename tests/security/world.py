"""Two tenants on each side, built once per backend with the domain functions: partners A and B
with an upload (one bad row) and a mapping profile; customers A and B with an invoice awaiting
approval, a disputed line, a channel, a delivery and stored documents; one user per role and tenant.

`World` holds the ids each tenant's URLs are built from and a logged-in test client per role.
"""

from __future__ import annotations

import io
import re
import shutil
from dataclasses import dataclass, field
from urllib.parse import quote

import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from portal import accounts, create_app
from portal.core.storage import get_storage
from portal.delivery.manage import add_channel
from portal.extensions import db
from portal.ingest.profiles import save_mapping
from portal.ingest.receive import receive_upload
from portal.ingest.review import import_valid_rows
from portal.invoicing import disputes
from portal.invoicing.build import run_period
from portal.jobs.workers import drain
from portal.models import (
    AuditEvent,
    Delivery,
    DeliveryStatus,
    Employee,
    Invoice,
    InvoiceDocument,
    JobRecord,
    LineItem,
    Upload,
    User,
)
from tests.backends import TEST_REDIS_URL, base_config, truncate_all
from tests.factories import PASSWORD
from tests.samples import HEADER, PROFILE

ROLES = ("anonymous", "partner_a", "partner_b", "customer_a", "customer_b", "admin")
EMAILS = {
    "admin": "admin@example.com",
    "partner_a": "partner-a@example.com",
    "partner_b": "partner-b@example.com",
    "customer_a": "contact-a@example.com",
    "customer_b": "contact-b@example.com",
}
# role -> (its kind, its tenant); admin and anonymous belong to no tenant.
ROLE_TENANT = {
    "partner_a": ("partner", "A"),
    "partner_b": ("partner", "B"),
    "customer_a": ("customer", "A"),
    "customer_b": ("customer", "B"),
}
TENANTS = {
    "A": {"slug": "uni-a", "code": "ACME", "partner": "partner_a", "customer": "customer_a"},
    "B": {"slug": "uni-b", "code": "GLOBEX", "partner": "partner_b", "customer": "customer_b"},
}


@dataclass
class World:
    app: Flask
    backend: str
    ids: dict[str, dict[str, object]] = field(default_factory=dict)  # tenant -> URL argument -> value
    clients: dict[str, FlaskClient] = field(default_factory=dict)  # role -> logged-in client

    def client(self, role: str) -> FlaskClient:
        return self.clients[role]


def make_app(backend: str, tmp_path, request) -> Flask:
    """An app like the `app` fixture's, for a longer-lived (module) scope."""
    config = {**base_config(tmp_path), "LOGIN_RATE_LIMIT": "1000 per minute"}
    if backend == "sqlite":
        path = tmp_path / "portal.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        config.update(SQLALCHEMY_DATABASE_URI=f"sqlite:///{path}", REDIS_URL=None)
    else:
        import pytest

        url = request.getfixturevalue("postgres_url")
        if not TEST_REDIS_URL:
            pytest.skip("PostgreSQL run skipped: TEST_REDIS_URL is not set")
        redis_url = request.getfixturevalue("redis_url")
        redis.Redis.from_url(redis_url).flushdb()
        truncate_all(url)
        config.update(SQLALCHEMY_DATABASE_URI=url, REDIS_URL=redis_url)
    return create_app(config)


def _rows(customer_code: str, prefix: str) -> bytes:
    good = f"E100,Ana,{customer_code},{prefix}-1,Tuition,100.00,USD,2026-01-15,Econ 101,Spring"
    good2 = f"E101,Bo,{customer_code},{prefix}-2,Books,20.00,USD,2026-01-16,Econ 101,Spring"
    bad = f"E100,Ana,{customer_code},{prefix}-3,Tuition,abc,USD,2026-01-17,Econ 101,Spring"
    return (HEADER + f"{good}\n{good2}\n{bad}\n").encode()


def build_world(app: Flask, backend: str) -> World:
    world = World(app, backend)
    with app.app_context():
        accounts.create_user(email=EMAILS["admin"], password=PASSWORD, role="admin")
        for tenant, names in TENANTS.items():
            partner = accounts.create_partner(slug=names["slug"], name=f"University {tenant}")
            customer = accounts.create_customer(code=names["code"], name=f"Customer {tenant}")
            for n in (100, 101):
                db.session.add(Employee(customer_id=customer.id, external_id=f"E{n}", name=f"P{n}"))
            accounts.create_user(
                email=EMAILS[names["partner"]], password=PASSWORD, role="partner", partner_slug=names["slug"]
            )
            accounts.create_user(
                email=EMAILS[names["customer"]],
                password=PASSWORD,
                role="customer",
                customer_code=names["code"],
            )
            save_mapping(partner, PROFILE)
            upload = receive_upload(
                partner,
                io.BytesIO(_rows(names["code"], tenant)),
                f"lines-{tenant}.csv",
                user=None,
                max_bytes=10**6,
            )
            db.session.commit()
            world.ids[tenant] = {
                "partner_id": partner.id,
                "customer_id": customer.id,
                "upload_id": upload.id,
                "name": "default",
                # the API names objects by their codes: /customers/<code>, /schedules/<customer> ...
                "code": customer.code,
                "customer": customer.code,
                "slug": partner.slug,
            }
    drain(app)
    with app.app_context():
        for tenant, names in TENANTS.items():
            ids = world.ids[tenant]
            upload = db.session.get(Upload, ids["upload_id"])
            import_valid_rows(upload, user=None)
            db.session.commit()
            run_period(ids["customer_id"], "2026-01", force=True)
            invoice = db.session.scalar(select(Invoice).where(Invoice.customer_id == ids["customer_id"]))
            lines = db.session.scalars(
                select(LineItem).where(LineItem.invoice_id == invoice.id).order_by(LineItem.id)
            ).all()
            contact = db.session.scalar(select(User).where(User.email == EMAILS[names["customer"]]))
            dispute = disputes.flag_line(invoice, lines[0].id, by=contact, comment="Not ours")
            channel, _ = add_channel(invoice.customer, "archive", by=admin_user())
            db.session.flush()
            delivery = Delivery(
                invoice_id=invoice.id,
                customer_id=invoice.customer_id,
                channel_id=channel.id,
                status=DeliveryStatus.FAILED,
            )
            db.session.add(delivery)
            for kind, content in (("pdf", b"%PDF-1.7 test"), ("csv", b"a,b\n")):
                key = f"invoices/{invoice.id}/{kind}"
                digest = get_storage().put(key, io.BytesIO(content))
                db.session.add(
                    InvoiceDocument(
                        invoice_id=invoice.id,
                        kind=kind,
                        storage_key=key,
                        sha256=digest,
                        size_bytes=len(content),
                    )
                )
            db.session.commit()
            ids.update(
                invoice_id=invoice.id,
                number=invoice.number,
                line_id=lines[1].id,
                employee_id=lines[1].employee_id,
                dispute_id=dispute.id,
                channel_id=channel.id,
                delivery_id=delivery.id,
                user_id=contact.id,
                kind="pdf",
                token="not-a-real-token",
                session_id=1,  # only sent where refused before any lookup (tests/security/test_sessions.py)
                token_id=10**6,  # no such API token: its revoke page answers 404 to everyone
            )
        event_id = db.session.scalar(select(AuditEvent.id).order_by(AuditEvent.id))
        job_id = db.session.scalar(select(JobRecord.id).order_by(JobRecord.created_at))
        for ids in world.ids.values():
            ids.update(event_id=event_id, job_id=job_id)
    for role in ROLES:
        client = app.test_client()
        if role != "anonymous":
            response = client.post("/login", data={"email": EMAILS[role], "password": PASSWORD})
            assert response.status_code == 302, f"{role} could not log in: {response.status_code}"
        world.clients[role] = client
    return world


def admin_user() -> User:
    return db.session.scalar(select(User).where(User.email == EMAILS["admin"]))


def teardown(world: World) -> None:
    with world.app.app_context():
        db.session.remove()
        db.engine.dispose()


# --- URLs and expected answers ---------------------------------------------------------------------

_ARGUMENT = re.compile(r"<(?:[^>]*:)?(\w+)>")


def fill(rule: str, values: dict) -> str:
    """The rule's URL with each <converter:name> replaced by values[name], quoted as it is."""
    return _ARGUMENT.sub(lambda m: quote(str(values[m.group(1)]), safe=""), rule)


def role_kind(role: str) -> tuple[str, str | None]:
    """("admin" | "partner" | "customer" | "anonymous", its tenant or None)."""
    return ROLE_TENANT.get(role, (role, None))


def snapshot(app: Flask) -> dict[str, list]:
    """Every row of every table, except what reading a page may write: page-view audit events (and
    the page views waiting to join the chain) and session bookkeeping (last seen)."""
    from portal.core.audit import READ_ONLY_ACTIONS
    from portal.models import PendingView

    state = {}
    with app.app_context():
        for table in db.metadata.sorted_tables:
            if "session" in table.name or table.name == PendingView.__tablename__:
                continue
            stmt = select(table)
            if table.name == AuditEvent.__tablename__:
                stmt = stmt.where(AuditEvent.action.not_in(READ_ONLY_ACTIONS))
            primary = list(table.primary_key.columns)
            state[table.name] = [tuple(row) for row in db.session.execute(stmt.order_by(*primary))]
        db.session.rollback()
    return state


def changed_tables(before: dict, after: dict) -> list[str]:
    return [name for name in before if before[name] != after.get(name)]
