"""Fixtures in the flaskr style: `app`, `client`, `runner`, `auth`, plus tenants and users.

Every test that takes `app` runs twice: on SQLite with fakeredis, and on PostgreSQL with real Redis
(TEST_DATABASE_URL / TEST_REDIS_URL). Without those variables the PostgreSQL run is skipped with
that reason; under CI (CI=true) their absence is an error instead, so CI never skips silently.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import redis
from aiosmtpd.controller import Controller
from argon2 import PasswordHasher, profiles
from flask_migrate import upgrade
from sqlalchemy import make_url

from portal import accounts, create_app
from portal.extensions import db
from portal.ingest.profiles import save_mapping
from portal.models import Employee, Upload, users
from tests.backends import (
    IN_CI,
    TEST_DATABASE_URL,
    TEST_REDIS_URL,
    base_config,
    empty_postgres_database,
    free_port,
    make_url_redis,
    truncate_all,
)
from tests.factories import PASSWORD, Billing
from tests.moto import moto_server
from tests.samples import PROFILE

# Argon2id with the library's cheapest parameters: the same code path (the hash still says
# $argon2id$), without 0.15 s of CPU for every user a fixture creates and every login. Production
# keeps argon2-cffi's recommended parameters; processes a test starts (worker.py) use those too.
users._hasher = PasswordHasher.from_parameters(profiles.CHEAPEST)
users._DUMMY_HASH = users._hasher.hash("not-a-real-password")


def _migrate(app) -> None:
    with app.app_context():
        upgrade()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A SQLite database built once by the real migrations; each test gets a copy."""
    base = tmp_path_factory.mktemp("sqlite-template")
    path = base / "template.db"
    app = create_app({**base_config(base), "SQLALCHEMY_DATABASE_URI": f"sqlite:///{path}"})
    _migrate(app)
    with app.app_context():
        db.engine.dispose()
    return path


@pytest.fixture(scope="session")
def worker_id(request) -> str:
    """xdist's worker name ("gw0", "gw1" ...), or "master" in one process (also with -p no:xdist)."""
    return getattr(request.config, "workerinput", {}).get("workerid", "master")


def _worker_index(worker_id: str) -> int:
    """0 without pytest-xdist ("master"), else the worker's number (gw0, gw1, ...)."""
    return int(worker_id[2:]) if worker_id.startswith("gw") else 0


@pytest.fixture(scope="session")
def redis_url(worker_id) -> str | None:
    """TEST_REDIS_URL, with one database number per xdist worker so parallel workers never share one."""
    return make_url_redis(TEST_REDIS_URL, _worker_index(worker_id)) if TEST_REDIS_URL else None


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory, worker_id) -> str:
    """TEST_DATABASE_URL (or, under xdist, one database per worker created next to it), with its
    public schema rebuilt by the real migrations, once per run."""
    if not TEST_DATABASE_URL:
        if IN_CI:
            pytest.fail("CI must set TEST_DATABASE_URL (see .ci/run)")
        pytest.skip("PostgreSQL run skipped: TEST_DATABASE_URL is not set")
    url = empty_postgres_database(
        f"{make_url(TEST_DATABASE_URL).database}_{worker_id}" if worker_id.startswith("gw") else None
    )
    app = create_app({**base_config(tmp_path_factory.mktemp("pg")), "SQLALCHEMY_DATABASE_URI": url})
    _migrate(app)
    with app.app_context():
        db.engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def app(backend, tmp_path, request):
    config = base_config(tmp_path)
    if backend == "sqlite":
        path = tmp_path / "portal.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        config.update(SQLALCHEMY_DATABASE_URI=f"sqlite:///{path}", REDIS_URL=None)
    else:
        url = request.getfixturevalue("postgres_url")
        if not TEST_REDIS_URL:
            if IN_CI:
                pytest.fail("CI must set TEST_REDIS_URL (see .ci/run)")
            pytest.skip("PostgreSQL run skipped: TEST_REDIS_URL is not set")
        redis_url = request.getfixturevalue("redis_url")
        redis.Redis.from_url(redis_url).flushdb()
        truncate_all(url)
        config.update(SQLALCHEMY_DATABASE_URI=url, REDIS_URL=redis_url)
    app = create_app(config)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="session")
def moto_endpoint():
    """A real S3/SQS-compatible server process (moto in server mode), one per test process."""
    with moto_server() as url:
        yield url


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


class AuthActions:
    def __init__(self, client):
        self._client = client

    def login(self, email="admin@example.com", password=PASSWORD):
        return self._client.post("/login", data={"email": email, "password": password})

    def logout(self):
        return self._client.post("/logout")


@pytest.fixture
def auth(client):
    return AuthActions(client)


@pytest.fixture
def tenants(app):
    """Two partners and two customers (with two employees each), and one user per role and tenant."""

    with app.app_context():
        p1 = accounts.create_partner(slug="state-u", name="State University")
        p2 = accounts.create_partner(slug="other-u", name="Other University")
        c1 = accounts.create_customer(code="ACME", name="Acme Corp", timezone="America/New_York")
        c2 = accounts.create_customer(code="GLOBEX", name="Globex", timezone="Europe/London")
        for customer in (c1, c2):
            for n in (1, 2):
                db.session.add(Employee(customer_id=customer.id, external_id=f"E{n}", name=f"Person {n}"))
        accounts.create_user(email="admin@example.com", password=PASSWORD, role="admin")
        accounts.create_user(
            email="partner@example.com", password=PASSWORD, role="partner", partner_slug="state-u"
        )
        accounts.create_user(
            email="partner2@example.com", password=PASSWORD, role="partner", partner_slug="other-u"
        )
        accounts.create_user(
            email="customer@example.com", password=PASSWORD, role="customer", customer_code="ACME"
        )
        accounts.create_user(
            email="customer2@example.com", password=PASSWORD, role="customer", customer_code="GLOBEX"
        )
        db.session.commit()
        ids = {"partner": p1.id, "partner2": p2.id, "customer": c1.id, "customer2": c2.id}
    return ids


@pytest.fixture(autouse=True)
def _push_request_context():
    """Override pytest-flask's: no request context spans a test, so each request gets its own
    app context, `g` and database session, as in production."""
    yield


@pytest.fixture
def partner(app):
    """State University with a mapping profile, and ACME / GLOBEX with employees E100-E105."""
    with app.app_context():
        p = accounts.create_partner(slug="state-u", name="State University")
        for code in ("ACME", "GLOBEX"):
            c = accounts.create_customer(code=code, name=code.title())
            for n in range(100, 106):
                db.session.add(Employee(customer_id=c.id, external_id=f"E{n}", name=f"Person {n}"))
        accounts.create_user(
            email="partner@example.com", password=PASSWORD, role="partner", partner_slug="state-u"
        )
        accounts.create_user(email="admin@example.com", password=PASSWORD, role="admin")
        save_mapping(p, PROFILE)
        db.session.commit()
        return p.id


@pytest.fixture
def billing(app):
    """Two partners (each with one upload), ACME and GLOBEX with employees E1-E3, an admin and two
    ACME contacts; add line items with `billing.add(amount_minor, "YYYY-MM-DD", ...)`."""

    with app.app_context():
        partners = [
            accounts.create_partner(slug="state-u", name="State University"),
            accounts.create_partner(slug="code-camp", name="Code Camp", kind="business"),
        ]
        for code, tz in (("ACME", "America/New_York"), ("GLOBEX", "Europe/London")):
            customer = accounts.create_customer(code=code, name=f"{code.title()} Inc", timezone=tz)
            for n in (1, 2, 3):
                db.session.add(Employee(customer_id=customer.id, external_id=f"E{n}", name=f"Person {n}"))
        accounts.create_user(email="admin@example.com", password=PASSWORD, role="admin")
        accounts.create_user(
            email="contact@acme.example", password=PASSWORD, role="customer", customer_code="ACME"
        )
        accounts.create_user(
            email="second@acme.example", password=PASSWORD, role="customer", customer_code="ACME"
        )
        uploads = {}
        for partner in partners:
            upload = Upload(
                partner_id=partner.id, filename="f.csv", storage_key="k", sha256="0" * 64, size_bytes=1
            )
            db.session.add(upload)
            db.session.flush()
            uploads[partner.slug] = upload.id
        db.session.commit()
    return Billing(app, {"upload": uploads})


class Collector:
    """An aiosmtpd handler that keeps every accepted envelope and refuses recipients at reject.test."""

    def __init__(self):
        self.envelopes = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.endswith("@reject.test"):
            return "550 5.1.1 Mailbox does not exist"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server():
    """A real SMTP server on 127.0.0.1 without STARTTLS or AUTH, like a local relay."""
    handler = Collector()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, handler
    controller.stop()


@pytest.fixture
def smtp_app(app, smtp_server):
    controller, _ = smtp_server
    app.config.update(
        MAIL_SERVER=controller.hostname,
        MAIL_PORT=controller.port,
        MAIL_USE_TLS=False,
        MAIL_USERNAME=None,
        MAIL_FROM="Tuition Invoice Portal <invoices@portal.test>",
    )
    return app
