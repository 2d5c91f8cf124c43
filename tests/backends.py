"""The databases and Redis the tests run on, and the settings every test app starts from.

Used by tests/conftest.py's fixtures and by the suites that start their own app or server
(security, e2e, faults, migrations).
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

from portal.extensions import db

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def base_config(tmp_path: Path) -> dict:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "WTF_CSRF_ENABLED": False,
        "STORAGE_URL": f"file://{tmp_path / 'storage'}",
        "MAIL_OUTBOX_DIR": str(tmp_path / "mail"),
        "RATELIMIT_STORAGE_URI": "memory://",
        "EMBEDDED_WORKER": False,
        "JOB_MODULE_PREFIXES": ("portal.", "tests."),
    }


def make_url_redis(url: str, index: int) -> str:
    base, _, number = url.rpartition("/")
    if not number.isdigit() or "/" not in url.split("://", 1)[1]:
        base, number = url.rstrip("/"), "0"
    return f"{base}/{(int(number) - index) % 16}"


def empty_postgres_database(name: str | None = None) -> str:
    """TEST_DATABASE_URL, or the database `name` next to it (created if missing), with its public
    schema dropped and made again; returns its URL."""
    url = TEST_DATABASE_URL
    if name:
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar():
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = make_url(url).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url


def truncate_all(url: str, attempts: int = 5) -> None:
    """Empty every table. A process an earlier test left behind (a server or a job still finishing)
    may hold or want a lock meanwhile: PostgreSQL then aborts one side as a deadlock, or the wait
    times out; try again, and if it never clears, say which sessions were in the way."""
    engine = create_engine(url)
    tables = ", ".join(t.name for t in db.metadata.sorted_tables)
    try:
        for attempt in range(1, attempts + 1):
            try:
                with engine.begin() as conn:
                    conn.execute(text("SET LOCAL lock_timeout = '10s'"))
                    conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
                return
            except OperationalError as error:
                if attempt == attempts:
                    raise RuntimeError(
                        f"could not empty the test database; other sessions: {_others(engine)}"
                    ) from error
                time.sleep(0.5 * attempt)
    finally:
        engine.dispose()


def _others(engine) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT pid, application_name, state, query FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        return [dict(row._mapping) for row in rows]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
