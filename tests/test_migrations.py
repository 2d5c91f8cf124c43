"""Migrations build the schema from an empty database, on SQLite and on PostgreSQL."""

import uuid

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from portal import create_app
from portal.extensions import db
from portal.jobs.runner import resolve
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


def test_migration_0014_when_parse_job_recorded_before_the_move_resolves_after(tmp_path):
    """A parse job recorded under its old dotted path (portal.ingest.pipeline) still runs."""
    app = create_app(
        {**base_config(tmp_path), "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'moved.db'}"}
    )
    with app.app_context():
        upgrade(revision="0013_job_heartbeat")
        db.session.execute(
            text(
                "INSERT INTO job_records (id, func, args, queue, description, status, attempts, max_attempts,"
                " progress, created_at, recoveries)"
                " VALUES ('j1', 'portal.ingest.pipeline.parse_upload', '[1]',"
                " 'ingest', 'Parse upload #1', 'failed', 3, 3, '{}', CURRENT_TIMESTAMP, 0)"
            )
        )
        db.session.commit()
        upgrade()
        func = db.session.execute(text("SELECT func FROM job_records WHERE id = 'j1'")).scalar()
        assert func == "portal.ingest.parse.parse_upload"
        assert resolve(func).__name__ == "parse_upload"
        downgrade(revision="0013_job_heartbeat")
        assert (
            db.session.execute(text("SELECT func FROM job_records")).scalar()
            == "portal.ingest.pipeline.parse_upload"
        )
        db.engine.dispose()
