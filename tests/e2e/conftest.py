"""Browser tests: Debian's Chromium (Playwright for Python) against a real portal server and worker.

One server per backend and test session, shared by every browser test of that backend:
- sqlite: the embedded default, `flask run` with its in-process worker (SQLite file, local storage);
- postgresql: production mode, gunicorn plus a separate `worker.py` on PostgreSQL and Redis.
The browser tests of one backend form one xdist group (`--dist loadgroup`), so each server starts
once. Tests never share objects: each makes its own partner, customer and logins (`world`).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from sqlalchemy import make_url

from tests.backends import (
    IN_CI,
    TEST_DATABASE_URL,
    TEST_REDIS_URL,
    empty_postgres_database,
    free_port,
    make_url_redis,
)
from tests.factories import PASSWORD

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
BACKENDS = ("sqlite", "postgresql")


def pytest_collection_modifyitems(items):
    for item in items:
        backend = getattr(item, "callspec", None) and item.callspec.params.get("portal_server")
        if backend and Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.xdist_group(f"e2e-{backend}"))


class PortalServer:
    """A running portal: its URL, its environment, and an app object for seeding data."""

    def __init__(self, backend: str, url: str, env: dict[str, str], logs: list[Path]):
        self.backend, self.url, self.env, self.logs = backend, url, env, logs
        self._app = None

    @property
    def app(self):
        """An app configured exactly like the server (same database, queue and storage), which
        never runs jobs itself: what it enqueues is run by the server's worker."""
        if self._app is None:
            from portal import create_app
            from portal.config import load_config

            config = load_config(self.env["PORTAL_INSTANCE_PATH"], self.env)
            config.update(EMBEDDED_WORKER=False)
            self._app = create_app(config)
        return self._app

    def log_tail(self, lines: int = 60) -> str:
        out = []
        for log in self.logs:
            if log.exists():
                out.append(
                    f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
                )
        return "\n".join(out)


def _wait_ready(url: str, procs: list[subprocess.Popen], server: PortalServer, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"portal process exited ({proc.args}):\n{server.log_tail()}")
        try:
            if requests.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"portal did not become healthy at {url}:\n{server.log_tail()}")


@pytest.fixture(scope="session", params=BACKENDS)
def portal_server(request, tmp_path_factory, worker_id):
    backend = request.param
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail(f"CI must have Chromium at {CHROMIUM} (.ci/run installs the chromium package)")
        pytest.skip(f"browser tests skipped: no Chromium at {CHROMIUM} (apt-get install chromium)")
    if backend == "postgresql" and not (TEST_DATABASE_URL and TEST_REDIS_URL):
        if IN_CI:
            pytest.fail("CI must set TEST_DATABASE_URL and TEST_REDIS_URL (see .ci/run)")
        pytest.skip("PostgreSQL browser tests skipped: TEST_DATABASE_URL / TEST_REDIS_URL are not set")

    instance = tmp_path_factory.mktemp(f"e2e-{backend}")
    port = free_port()
    env = {
        **os.environ,
        "PORTAL_INSTANCE_PATH": str(instance),
        "SECRET_KEY": "e2e-secret-key-not-for-production",
        "PORTAL_ENV": "development",
        "PORTAL_BASE_URL": f"http://127.0.0.1:{port}",
        "LOGIN_RATE_LIMIT": "1000 per minute",
        "JOB_SWEEP_SECONDS": "2",
        "PYTHONUNBUFFERED": "1",
    }
    for key in ("DATABASE_URL", "REDIS_URL", "STORAGE_URL", "RATELIMIT_STORAGE_URI", "FLASK_APP"):
        env.pop(key, None)
    index = int(worker_id[2:]) if worker_id.startswith("gw") else 0
    if backend == "postgresql":
        redis_url = make_url_redis(TEST_REDIS_URL, 8 + index)
        import redis

        redis.Redis.from_url(redis_url).flushdb()
        env.update(
            DATABASE_URL=empty_postgres_database(f"{make_url(TEST_DATABASE_URL).database}_e2e_{worker_id}"),
            REDIS_URL=redis_url,
        )
    else:
        env["DATABASE_URL"] = f"sqlite:///{instance / 'portal.db'}"

    python = sys.executable
    flask = [python, "-m", "flask", "--app", "portal"]
    subprocess.run([*flask, "db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    logs, procs = [], []

    def start(name: str, args: list[str]) -> None:
        log = instance / f"{name}.log"
        logs.append(log)
        procs.append(
            subprocess.Popen(
                args,
                cwd=ROOT,
                env=env,
                stdout=log.open("w"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    if backend == "postgresql":
        start("gunicorn", [python, "-m", "gunicorn", "--workers", "2", "--threads", "4",
                           "--bind", f"127.0.0.1:{port}", "wsgi:app"])  # fmt: skip
        start("worker", [python, "worker.py"])
    else:
        start(
            "flask",
            [*flask, "run", "--host", "127.0.0.1", "--port", str(port), "--no-reload", "--no-debugger"],
        )
    server = PortalServer(backend, f"http://127.0.0.1:{port}", env, logs)
    try:
        _wait_ready(server.url, procs, server)
        with server.app.app_context():
            from portal import accounts
            from portal.extensions import db

            accounts.create_user(email="admin@e2e.example.com", password=PASSWORD, role="admin")
            db.session.commit()
        yield server
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        if server._app is not None:
            with server.app.app_context():
                from portal.extensions import db

                db.engine.dispose()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip(f"browser tests skipped: no Chromium at {CHROMIUM}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],  # fmt: skip
        )
        yield browser
        browser.close()


class ConsoleLog:
    """Console errors and failed requests seen by a page; a test asserts it stays empty."""

    def __init__(self):
        self.errors: list[str] = []

    def attach(self, page):
        page.on("console", lambda msg: msg.type == "error" and self.errors.append(msg.text))
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))


@pytest.fixture
def console():
    return ConsoleLog()


@pytest.fixture
def context(browser, portal_server, tmp_path):
    context = browser.new_context(
        base_url=portal_server.url, viewport={"width": 1280, "height": 900}, accept_downloads=True
    )
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def page(context, console, portal_server, request):
    page = context.new_page()
    console.attach(page)
    yield page
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        print(portal_server.log_tail())


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.rep_call = report
    return report


SCREENSHOT_DIR = os.environ.get("E2E_SCREENSHOT_DIR")


@pytest.fixture
def shot(request, tmp_path_factory, portal_server):
    """shot(page, name): save a screenshot. `make screenshots` sets E2E_SCREENSHOT_DIR (docs/screenshots),
    where the SQLite run's shots land under their plain names; otherwise they go to the test's tmp dir."""
    base = tmp_path_factory.getbasetemp() / "screenshots"

    def take(page, name: str, *, full_page: bool = True) -> Path:
        if SCREENSHOT_DIR and portal_server.backend == "sqlite":
            path = Path(SCREENSHOT_DIR) / f"{name}.png"
        else:
            path = base / f"{name}-{portal_server.backend}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        # A full-page shot is stitched at one scroll position: sticky bars would float mid-page.
        unstick = (
            "(on) => document.querySelectorAll('.topbar, .sidenav, thead th')"
            ".forEach(e => { e.style.position = on ? 'static' : ''; })"
        )
        if full_page:
            page.evaluate(unstick, True)
        page.screenshot(path=str(path), full_page=full_page)
        if full_page:
            page.evaluate(unstick, False)
        return path

    return take


# -- seeding: every test makes its own tenants, so tests never see each other's data -------------


class World:
    """A partner with a mapping profile, a customer with employees, and a login for each."""

    def __init__(self, server: PortalServer):
        self.server = server
        tag = uuid.uuid4().hex[:6]
        self.partner_slug = f"uni-{tag}"
        self.customer_code = f"C{tag.upper()}"
        self.partner_email = f"partner-{tag}@e2e.example.com"
        self.contact_email = f"contact-{tag}@e2e.example.com"
        self.admin_email = "admin@e2e.example.com"
        self.password = PASSWORD
        from portal import accounts
        from portal.extensions import db
        from portal.ingest.profiles import save_mapping
        from portal.models import Employee
        from tests.samples import PROFILE

        with server.app.app_context():
            partner = accounts.create_partner(slug=self.partner_slug, name=f"University {tag}")
            customer = accounts.create_customer(
                code=self.customer_code, name=f"Customer {tag}", timezone="America/New_York"
            )
            for n in range(100, 106):
                db.session.add(
                    Employee(
                        customer_id=customer.id,
                        external_id=f"E{n}",
                        name=f"Person {n}",
                        email=f"person{n}-{tag}@e2e.example.com",
                    )
                )
            accounts.create_user(
                email=self.partner_email, password=PASSWORD, role="partner", partner_slug=self.partner_slug
            )
            accounts.create_user(
                email=self.contact_email, password=PASSWORD, role="customer", customer_code=self.customer_code
            )
            save_mapping(partner, PROFILE)
            db.session.commit()
            self.partner_id, self.customer_id = partner.id, customer.id

    def csv(self, *rows: tuple) -> bytes:
        """A partner file in the sample profile's layout. rows: (employee, reference, type, amount, date)."""
        from tests.samples import HEADER

        lines = [
            f'{emp},Name {emp},{self.customer_code},{ref},{kind},"{amount}",USD,{date},Course {ref},Fall 2026'
            for emp, ref, kind, amount, date in rows
        ]
        return (HEADER + "".join(line + "\n" for line in lines)).encode()

    def upload_bytes(self, data: bytes, filename: str) -> int:
        """Upload a file as this partner and parse it now, whatever its outcome; returns its id."""
        import io

        from portal import jobs
        from portal.extensions import db
        from portal.ingest.receive import receive_upload
        from portal.models import Partner

        with self.server.app.app_context():
            partner = db.session.get(Partner, self.partner_id)
            upload = receive_upload(partner, io.BytesIO(data), filename, user=None, max_bytes=10**7)
            db.session.commit()
            jobs.run_job(upload.job_id)
            deadline = time.monotonic() + 60
            while upload.in_progress and time.monotonic() < deadline:
                time.sleep(0.2)
                db.session.expire_all()
            return upload.id

    def import_rows(self, rows: list[tuple], *, filename: str | None = None, clean: bool = True) -> int:
        """Upload `rows` as this partner's file and parse it now (as `flask ingest` does); unless
        `clean` is False the rows must import cleanly. Returns the upload's id."""
        import io

        from portal import jobs
        from portal.extensions import db
        from portal.ingest.receive import receive_upload
        from portal.ingest.reports import summary
        from portal.models import Partner, UploadStatus

        with self.server.app.app_context():
            partner = db.session.get(Partner, self.partner_id)
            upload = receive_upload(
                partner,
                io.BytesIO(self.csv(*rows)),
                filename or f"seed-{uuid.uuid4().hex[:6]}.csv",
                user=None,
                max_bytes=10**7,
            )
            db.session.commit()
            jobs.run_job(upload.job_id)  # the server's worker may have taken it first: wait for it then
            deadline = time.monotonic() + 60
            while True:
                db.session.expire_all()
                if not upload.in_progress or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert upload.status == UploadStatus.IMPORTED or not clean, summary(upload)
            return upload.id

    def invoice(self, rows: list[tuple], period: str = "2026-10") -> str:
        """Import `rows` and build the customer's invoice for `period` now, as the CLI does; returns
        the invoice number."""
        from sqlalchemy import select

        from portal.extensions import db
        from portal.invoicing.build import run_period
        from portal.models import Invoice

        self.import_rows(rows)
        with self.server.app.app_context():
            run_period(self.customer_id, period, None, True)
            db.session.commit()
            return db.session.scalar(
                select(Invoice.number)
                .where(Invoice.customer_id == self.customer_id)
                .order_by(Invoice.id.desc())
            )


@pytest.fixture
def world(portal_server) -> World:
    return World(portal_server)


__all__ = ["World", "shutil"]
