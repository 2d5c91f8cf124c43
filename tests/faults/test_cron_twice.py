"""Two worker.py processes: one cron leader between them, and a periodic build fired twice
(as by two leaders) still builds each customer's period once."""

import datetime as dt
import time

import pytest
from rq.cron import CronScheduler
from sqlalchemy import func, select

from portal import jobs
from portal.extensions import db
from portal.invoicing.build import enqueue_due
from portal.jobs.workers import CRON_LOCK_KEY
from portal.models import Customer, Invoice, InvoiceRun, JobRecord, JobStatus
from tests.factories import wait_for

pytestmark = pytest.mark.parametrize("backend", ["postgresql"])


def test_cron_when_two_workers_run_has_one_leader(app, workers):
    workers.start(name="worker-a")
    workers.start(name="worker-b")
    with app.app_context():
        conn = jobs.get_connection()
        wait_for(lambda: conn.get(CRON_LOCK_KEY), 30, f"a cron leader\n{workers.log()}")
        # Both cron processes are up and have tried the lock (they try at once on start).
        wait_for(lambda: len(CronScheduler.all(conn)) >= 1, 30, "the leader's cron scheduler")
        time.sleep(3)
        schedulers = CronScheduler.all(conn)
        assert [s.name for s in schedulers] == [conn.get(CRON_LOCK_KEY).decode()]


def test_periodic_build_when_fired_twice_on_two_workers_builds_once(app, billing, workers):
    billing.add(30000, "2026-10-05")
    billing.add(12000, "2026-10-06", employee="E2")
    november = dt.datetime(2026, 11, 2, 15, 0, tzinfo=dt.UTC)
    with app.app_context():
        acme = db.session.scalar(select(Customer.id).where(Customer.code == "ACME"))
        # The cron job fired twice before either build ran (two leaders across a lost lock).
        assert enqueue_due(now=november) == enqueue_due(now=november) == 2
    workers.start(name="worker-a")
    workers.start(name="worker-b")

    def all_done():
        with app.app_context():
            return not db.session.scalar(
                select(func.count()).where(JobRecord.status.not_in([JobStatus.DONE, JobStatus.FAILED]))
            )

    wait_for(all_done, 60, f"both builds to run\n{workers.log()}")
    with app.app_context():
        assert db.session.scalar(select(func.count()).where(InvoiceRun.customer_id == acme)) == 1
        assert db.session.scalar(select(func.count()).where(Invoice.customer_id == acme)) == 1
        failed = db.session.scalar(select(func.count()).where(JobRecord.status == JobStatus.FAILED))
        assert failed == 0
