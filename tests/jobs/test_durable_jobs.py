"""The durable enqueue: recorded with the work, pushed after commit, swept when lost, run once."""

from datetime import timedelta

import pytest
import redis
from rq.job import Job
from sqlalchemy import select

from portal import jobs
from portal.extensions import db
from portal.jobs.workers import drain
from portal.models import AuditEvent, JobRecord, JobStatus
from tests.jobs.sample_jobs import always_fails, note


def _notes(app):
    with app.app_context():
        return [
            e.details["note"]
            for e in db.session.scalars(select(AuditEvent).where(AuditEvent.action == "test.job_ran"))
        ]


def _record(app, job_id):
    with app.app_context():
        return db.session.get(JobRecord, job_id)


def _age(app, job_id, seconds=3600):
    with app.app_context():
        record = db.session.get(JobRecord, job_id)
        record.created_at = record.created_at - timedelta(seconds=seconds)
        db.session.commit()


def test_enqueue_when_committed_runs_job(app):
    with app.app_context():
        job_id = jobs.enqueue(note, "hello").id
        db.session.commit()
    assert _record(app, job_id).status == JobStatus.ENQUEUED
    drain(app)
    assert _notes(app) == ["hello"]
    assert _record(app, job_id).status == JobStatus.DONE


def test_enqueue_when_rolled_back_runs_nothing(app):
    with app.app_context():
        jobs.enqueue(note, "never")
        db.session.rollback()
        assert db.session.scalar(select(JobRecord)) is None
    drain(app)
    assert _notes(app) == []


def test_enqueue_when_redis_unreachable_keeps_job_and_runs_it_after_redis_returns(app):
    working = app.extensions["redis"]
    app.extensions["redis"] = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    with app.app_context():
        job_id = jobs.enqueue(note, "survived the outage").id
        db.session.commit()  # does not raise: the push failed after the commit, the record stays
    assert _record(app, job_id).status == JobStatus.PENDING
    assert _notes(app) == []

    app.extensions["redis"] = working  # Redis is back
    _age(app, job_id)
    with app.app_context():
        assert jobs.sweep() == 1
    drain(app)
    assert _notes(app) == ["survived the outage"]
    assert _record(app, job_id).status == JobStatus.DONE


def test_sweep_when_queue_forgot_job_enqueues_it_again(app):
    with app.app_context():
        job_id = jobs.enqueue(note, "forgotten").id
        db.session.commit()
    jobs_conn = app.extensions["redis"]
    jobs_conn.flushdb()  # what a fakeredis restart or a Redis without persistence does
    _age(app, job_id)
    with app.app_context():
        assert jobs.sweep() == 1
    drain(app)
    assert _notes(app) == ["forgotten"]


def test_sweep_when_job_still_queued_leaves_it(app):
    with app.app_context():
        job_id = jobs.enqueue(note, "queued").id
        db.session.commit()
    _age(app, job_id)
    with app.app_context():
        assert jobs.sweep() == 0


def test_run_job_when_pushed_twice_runs_once(app):
    with app.app_context():
        record = jobs.enqueue(note, "once")
        db.session.commit()
        jobs.push_to_rq([record.id])  # a duplicate push, as after a crash mid-sweep
    drain(app)
    drain(app)
    assert _notes(app) == ["once"]


def test_run_job_when_already_done_does_nothing(app):
    with app.app_context():
        job_id = jobs.enqueue(note, "done").id
        db.session.commit()
    drain(app)
    with app.app_context():
        assert jobs.run_job(job_id) is None
    assert _notes(app) == ["done"]


def test_job_when_failing_is_retried_then_marked_failed_with_error(app):
    with app.app_context():
        job_id = jobs.enqueue(always_fails, "the impossible", max_attempts=2).id
        db.session.commit()
    drain(app)
    record = _record(app, job_id)
    assert record.status == JobStatus.RETRYING and record.attempts == 1
    with app.app_context(), pytest.raises(RuntimeError):
        jobs.run_job(job_id)  # the retry, run directly rather than waiting for RQ's back-off
    record = _record(app, job_id)
    assert record.status == JobStatus.FAILED and record.attempts == 2
    assert "cannot do the impossible" in record.error


def test_retry_when_failed_runs_job_again(app):
    with app.app_context():
        job_id = jobs.enqueue(always_fails, "x", max_attempts=1).id
        db.session.commit()
    drain(app)
    assert _record(app, job_id).status == JobStatus.FAILED
    with app.app_context():
        record = db.session.get(JobRecord, job_id)
        record.func = "tests.jobs.sample_jobs.note"  # the cause was fixed
        jobs.retry(record)
        db.session.commit()
    drain(app)
    assert _record(app, job_id).status == JobStatus.DONE
    assert _notes(app) == ["x"]


def test_enqueue_when_function_outside_allowed_packages_refused(app):
    with app.app_context(), pytest.raises(ValueError, match="jobs must be functions of"):
        jobs.enqueue("os.system", "rm -rf /")


def test_enqueue_when_unknown_queue_refused(app):
    with app.app_context(), pytest.raises(ValueError, match="unknown queue"):
        jobs.enqueue(note, "x", queue="nope")


def test_enqueue_with_custom_retry_intervals_hands_them_to_rq(app):
    with app.app_context():
        job_id = jobs.enqueue(note, "x", max_attempts=4, retry_intervals=[30, 3600, 86400]).id
        db.session.commit()
        job = Job.fetch(job_id, connection=jobs.get_connection())
        assert (job.retries_left, job.retry_intervals) == (3, [30, 3600, 86400])


def test_sweep_when_retrying_job_was_lost_keeps_the_rest_of_its_schedule(app):
    with app.app_context():
        job_id = jobs.enqueue(note, "x", max_attempts=5, retry_intervals=[10, 20, 30, 40]).id
        db.session.commit()
        record = db.session.get(JobRecord, job_id)
        record.status, record.attempts = JobStatus.RETRYING, 2  # two tries failed, a retry scheduled
        db.session.commit()
    app.extensions["redis"].flushdb()  # Redis restarted empty: the scheduled retry is gone
    _age(app, job_id)
    with app.app_context():
        assert jobs.sweep() == 1
        job = Job.fetch(job_id, connection=jobs.get_connection())
        assert (job.retries_left, job.retry_intervals) == (2, [30, 40])
