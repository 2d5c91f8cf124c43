"""Migrations build the schema from an empty database, on SQLite and on PostgreSQL."""

import uuid

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from portal import create_app
from portal.extensions import db
from tests.backends import TEST_DATABASE_URL, base_config

EXPECTED = {"partners", "customers", "employees", "users", "audit_events", "job_records", "alembic_version"}


def _upgrade_and_inspect(tmp_path, url):
    app = create_app({**base_config(tmp_path), "SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        tables = set(inspect(db.engine).get_table_names())
        # The schema the migrations built matches the models: nothing left to autogenerate.
        from alembic.autogenerate import compare_metadata
        from alembic.migration import MigrationContext

        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
        downgrade(revision="base")
        left = set(inspect(db.engine).get_table_names()) - {"alembic_version"}
        db.engine.dispose()
    return tables, diff, left


def test_migrations_when_sqlite_empty_build_every_table(tmp_path):
    tables, diff, left = _upgrade_and_inspect(tmp_path, f"sqlite:///{tmp_path / 'fresh.db'}")
    assert tables >= EXPECTED
    assert diff == []
    assert left == set()


def test_migrations_when_postgresql_empty_build_every_table(tmp_path):
    if not TEST_DATABASE_URL:
        pytest.skip("PostgreSQL run skipped: TEST_DATABASE_URL is not set")
    name = f"portal_migrate_{uuid.uuid4().hex[:8]}"
    admin = create_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
        tables, diff, left = _upgrade_and_inspect(tmp_path, url)
        assert tables >= EXPECTED
        assert diff == []
        assert left == set()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
