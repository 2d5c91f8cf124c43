"""Services going away while people work: Redis stopped while a partner uploads and a contact
approves (both recorded, each job run once when Redis is back); file storage down during an upload
(a clear refusal, and no upload row pointing at a file that was never stored)."""

from __future__ import annotations

import io
import shutil
import subprocess
import time
from datetime import timedelta

import pytest
import redis
from sqlalchemy import func, select

from portal import accounts, jobs
from portal.core.storage import LocalStorage, S3Storage
from portal.extensions import db
from portal.invoicing.build import run_period
from portal.jobs.workers import drain
from portal.models import Customer, Invoice, InvoiceDocument, JobRecord, LineItem, Upload, UploadStatus
from tests.backends import free_port
from tests.factories import PASSWORD
from tests.samples import ROW1, ROW2, csv_bytes

REDIS_SERVER = shutil.which("redis-server")


class OwnRedis:
    """A Redis server of this test's own, which the test stops and starts (never the shared one)."""

    def __init__(self, tmp_path):
        self.port, self.dir, self.proc = free_port(), tmp_path, None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("the test's Redis did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_connect_timeout=0.5, socket_timeout=2)


@pytest.fixture
def own_redis(tmp_path):
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    if server.proc.poll() is None:
        server.stop()


def _count(app, stmt) -> int:
    with app.app_context():
        return db.session.scalar(stmt)


def _sweep_and_run(app) -> None:
    """What a worker does when it starts, or its sweeper every JOB_SWEEP_SECONDS: push the jobs RQ
    never got (aged past the sweeper's grace period), then run them."""
    with app.app_context():
        for record in db.session.scalars(select(JobRecord)):
            record.created_at = record.created_at - timedelta(hours=1)
        db.session.commit()
        jobs.sweep()
    drain(app)


@pytest.mark.parametrize("backend", ["postgresql"])
def test_redis_stopped_while_partner_uploads_and_contact_approves_runs_each_job_once_after(
    app, client, auth, partner, own_redis
):
    app.extensions["redis"] = own_redis.client()
    with app.app_context():
        accounts.create_user(
            email="contact@acme.example", password=PASSWORD, role="customer", customer_code="ACME"
        )
        db.session.commit()

    own_redis.stop()
    auth.login("partner@example.com")
    data = {"files": [(io.BytesIO(csv_bytes(ROW1, ROW2)), "january.csv")]}
    answer = client.post("/partner/uploads", data=data, content_type="multipart/form-data")
    assert answer.status_code == 303  # received and recorded although the queue is down
    assert _count(app, select(Upload.status)) == UploadStatus.RECEIVED

    own_redis.start()
    _sweep_and_run(app)
    assert _count(app, select(Upload.status)) == UploadStatus.IMPORTED
    assert _count(app, select(func.count(LineItem.id))) == 2

    with app.app_context():
        customer_id = db.session.scalar(select(Customer.id).where(Customer.code == "ACME"))
        run_period(customer_id, "2026-01", None, True)
        db.session.commit()
        invoice_id = db.session.scalar(select(Invoice.id))
    auth.logout()
    auth.login("contact@acme.example")
    own_redis.stop()
    answer = client.post(f"/customer/invoices/{invoice_id}/approve", data={"comment": ""})
    assert answer.status_code in (302, 303)
    with app.app_context():
        assert db.session.get(Invoice, invoice_id).status.value == "approved"

    own_redis.start()
    _sweep_and_run(app)
    _sweep_and_run(app)  # a second sweep finds nothing left to run
    documents = _count(
        app, select(func.count(InvoiceDocument.id)).where(InvoiceDocument.invoice_id == invoice_id)
    )
    assert documents == 2  # the PDF and the CSV, once each


def _upload_refused(app, client, htmx: bool):
    headers = {"HX-Request": "true", "HX-Boosted": "true"} if htmx else {}
    data = {"files": [(io.BytesIO(csv_bytes(ROW1)), "january.csv")]}
    return client.post("/partner/uploads", data=data, content_type="multipart/form-data", headers=headers)


@pytest.mark.parametrize("htmx", [False, True])
def test_upload_when_local_storage_unwritable_refuses_clearly_and_records_nothing(
    app, client, auth, partner, tmp_path, htmx
):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the storage folder should be")  # refused even to root
    app.extensions["storage"] = LocalStorage(blocker / "storage")
    auth.login("partner@example.com")
    answer = _upload_refused(app, client, htmx)
    assert answer.status_code == 503
    assert "january.csv could not be stored" in answer.data.decode()
    if htmx:  # a 5xx is not swapped: the banner carries the reason
        assert "could not be stored" in answer.headers["HX-Trigger"]
    assert _count(app, select(func.count(Upload.id))) == 0
    assert _count(app, select(func.count(JobRecord.id))) == 0


def test_upload_when_s3_unreachable_refuses_clearly_and_records_nothing(app, client, auth, partner):
    import boto3
    from botocore.config import Config

    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        aws_access_key_id="test",
        aws_secret_access_key="test",  # noqa: S106 - a fake key for a server that is not there
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=1),
    )
    app.extensions["storage"] = S3Storage("invoices", client=s3)
    auth.login("partner@example.com")
    answer = _upload_refused(app, client, htmx=False)
    assert answer.status_code == 503
    assert "our file storage is not reachable" in answer.data.decode()
    assert _count(app, select(func.count(Upload.id))) == 0
