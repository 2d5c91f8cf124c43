"""A worker.py SIGKILLed (with its work horse) mid-job: the job runs again on a new worker within
2 minutes, and the database ends exactly right (every row once, one invoice, one set of files).

Real processes over the test's PostgreSQL and Redis; the PostgreSQL run is skipped only without
TEST_DATABASE_URL / TEST_REDIS_URL (never under CI). Short intervals keep each test near 15 s.
"""

import io

import pytest
from sqlalchemy import func, select

from portal import jobs
from portal.core.storage import get_storage
from portal.extensions import db
from portal.models import (
    AuditEvent,
    Customer,
    Invoice,
    InvoiceDocument,
    JobStatus,
    LineItem,
    Partner,
    Upload,
    UploadStatus,
)
from tests.factories import job, wait_for
from tests.samples import HEADER

RECOVERY_DEADLINE = 120  # the promise: a dead worker's job runs again within 2 minutes

pytestmark = pytest.mark.parametrize("backend", ["postgresql"])

ROWS = 3000


def _big_csv(rows: int) -> bytes:
    lines = [
        f"E{100 + n % 6},Person,{'ACME' if n % 2 else 'GLOBEX'},T-{n},Tuition,{10 + n % 90}.50,USD,"
        f"2026-01-{1 + n % 28:02d},Econ 101,Spring 2026\n"
        for n in range(rows)
    ]
    return (HEADER + "".join(lines)).encode()


def _recovered_events(app, job_id):
    with app.app_context():
        return db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "job.recovered", AuditEvent.subject_id == job_id)
        ).all()


def _kill_mid_job_and_recover(app, workers, job_id, hang):
    """Start a worker that stops inside `hang`, SIGKILL it there, start a fresh one; wait for done."""
    first = workers.start(hang=hang)
    horse = workers.wait_reached()
    assert job(app, job_id).status == JobStatus.RUNNING
    workers.kill(first, horse)
    workers.start()
    wait_for(
        lambda: job(app, job_id).status in (JobStatus.DONE, JobStatus.FAILED),
        RECOVERY_DEADLINE,
        f"the job to run again after its worker died\n{workers.log()}",
    )
    record = job(app, job_id)
    assert record.status == JobStatus.DONE, record.error
    assert record.recoveries == 1 and record.attempts == 2
    assert len(_recovered_events(app, job_id)) == 1
    return record


def test_import_when_worker_killed_mid_parse_recovers_with_every_row_once(app, partner, workers):
    with app.app_context():
        upload = jobs_upload = None
        from portal.ingest.receive import receive_upload

        p = db.session.get(Partner, partner)
        upload = receive_upload(p, io.BytesIO(_big_csv(ROWS)), "big.csv", user=None, max_bytes=1 << 24)
        db.session.commit()
        upload_id, jobs_upload = upload.id, upload.job_id
    # set_progress is called while the rows stream into the database: stop there, mid-parse.
    _kill_mid_job_and_recover(app, workers, jobs_upload, "portal.jobs:set_progress")
    with app.app_context():
        upload = db.session.get(Upload, upload_id)
        assert upload.status == UploadStatus.IMPORTED, upload.message
        lines = db.session.scalar(select(func.count()).where(LineItem.upload_id == upload_id))
        refs = db.session.scalar(
            select(func.count(func.distinct(LineItem.partner_reference))).where(
                LineItem.upload_id == upload_id
            )
        )
    assert lines == refs == ROWS


def _acme(app):
    with app.app_context():
        return db.session.scalar(select(Customer.id).where(Customer.code == "ACME"))


def test_invoice_build_when_worker_killed_mid_build_recovers_with_one_invoice(app, billing, workers):
    line_ids = [
        billing.add(1000 + n, f"2026-10-{1 + n % 28:02d}", employee=f"E{1 + n % 3}") for n in range(40)
    ]
    customer_id = _acme(app)
    from portal.invoicing.build import run_period

    with app.app_context():
        job_id = jobs.enqueue(run_period, customer_id, "2026-10", queue="invoices", description="build").id
        db.session.commit()
    # Stop after the invoice and its lines are written, before the job's commit.
    _kill_mid_job_and_recover(app, workers, job_id, "portal.invoicing.build:build_invoices")
    with app.app_context():
        invoices = db.session.scalars(select(Invoice).where(Invoice.customer_id == customer_id)).all()
        assert len(invoices) == 1
        attached = db.session.scalars(select(LineItem.invoice_id).where(LineItem.id.in_(line_ids))).all()
    assert attached == [invoices[0].id] * len(line_ids)


def test_render_when_worker_killed_mid_render_recovers_with_documents_once(app, billing, workers):
    from tests.factories import build_invoice

    billing.add(125000, "2026-10-03")
    billing.add(8999, "2026-10-09", employee="E2")
    app.config["RENDER_THEN_DELIVER"] = False
    invoice_id = build_invoice(app)  # approved: its render job is queued
    with app.app_context():
        job_id = db.session.get(Invoice, invoice_id).render_job_id
    # The render reports its first phase ("writing the CSV") through set_progress: stop there.
    _kill_mid_job_and_recover(app, workers, job_id, "portal.jobs:set_progress")
    with app.app_context():
        documents = db.session.scalars(
            select(InvoiceDocument).where(InvoiceDocument.invoice_id == invoice_id)
        ).all()
        assert sorted(d.kind for d in documents) == ["csv", "pdf"]
        assert all(get_storage().exists(d.storage_key) for d in documents)
