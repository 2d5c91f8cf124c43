"""The database connection of a running job cut (its backend terminated mid-build): the attempt
fails cleanly with nothing half-written visible, and RQ's retry builds the invoice once."""

import pytest
from sqlalchemy import create_engine, func, select, text

from portal import jobs
from portal.extensions import db
from portal.invoicing.build import run_period
from portal.models import Customer, Invoice, JobStatus, LineItem
from tests.factories import job, wait_for

pytestmark = pytest.mark.parametrize("backend", ["postgresql"])


def _terminate_open_transactions(url: str) -> int:
    """pg_terminate_backend every other session of this database that is inside a transaction:
    the job's, stopped after writing the invoice and before its commit."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            return len(
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                        " AND state = 'idle in transaction'"
                    )
                ).all()
            )
    finally:
        engine.dispose()


def _invoices(app, customer_id):
    with app.app_context():
        return db.session.scalar(select(func.count()).where(Invoice.customer_id == customer_id))


def test_build_when_database_connection_dropped_mid_job_retry_builds_invoice_once(
    app,
    billing,
    workers,
):
    line_ids = [billing.add(5000 + n, f"2026-10-{2 + n:02d}") for n in range(5)]
    with app.app_context():
        customer_id = db.session.scalar(select(Customer.id).where(Customer.code == "ACME"))
        job_id = jobs.enqueue(run_period, customer_id, "2026-10", queue="invoices", description="build").id
        db.session.commit()
    workers.start(hang="portal.invoicing.build:build_invoices")
    workers.wait_reached()
    assert _terminate_open_transactions(app.config["SQLALCHEMY_DATABASE_URI"]) == 1
    workers.release.touch()

    wait_for(
        lambda: job(app, job_id).status != JobStatus.RUNNING, 30, f"the attempt to fail\n{workers.log()}"
    )
    record = job(app, job_id)
    assert record.status == JobStatus.RETRYING and "OperationalError" in record.error
    assert _invoices(app, customer_id) == 0  # the invoice written before the cut was rolled back

    # RQ's retry (10 s later) runs on the same worker, past the fault point this time.
    wait_for(lambda: job(app, job_id).finished, 60, f"the retry\n{workers.log()}")
    record = job(app, job_id)
    assert record.status == JobStatus.DONE and record.attempts == 2 and record.recoveries == 0
    assert _invoices(app, customer_id) == 1
    with app.app_context():
        attached = set(db.session.scalars(select(LineItem.invoice_id).where(LineItem.id.in_(line_ids))))
        assert len(attached) == 1 and None not in attached
