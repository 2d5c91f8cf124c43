"""A job whose worker died is handed back by the sweeper; a job that is merely slow never is."""

import io
import threading
from datetime import timedelta

from sqlalchemy import select

from portal import jobs
from portal.core import formatting
from portal.extensions import db
from portal.ingest.receive import receive_upload
from portal.jobs import runner
from portal.jobs.workers import drain
from portal.models import AuditEvent, JobRecord, JobStatus, Partner, Upload
from portal.models.base import utcnow
from tests.jobs.sample_jobs import note, slow
from tests.samples import ROW1, csv_bytes


def _record(app, job_id):
    with app.app_context():
        return db.session.get(JobRecord, job_id)


def _events(app, action):
    with app.app_context():
        return db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()


def _notes(app):
    return [e.details["note"] for e in _events(app, "test.job_ran")]


def _died_while_running(app, job_id, *, silent_for=3600, attempts=1):
    """What a worker SIGKILLed mid-job leaves behind: the record claimed, its heartbeat stopped."""
    with app.app_context():
        record = db.session.get(JobRecord, job_id)
        record.status = JobStatus.RUNNING
        record.attempts = attempts
        record.started_at = record.heartbeat_at = utcnow() - timedelta(seconds=silent_for)
        record.worker = "worker-1:4242"
        db.session.commit()


def _enqueued(app, func, *args, **kwargs):
    with app.app_context():
        job_id = jobs.enqueue(func, *args, **kwargs).id
        db.session.commit()
    return job_id


def test_sweep_when_running_job_heartbeat_stale_hands_it_back_and_rerun_claims_it(app):
    job_id = _enqueued(app, note, "after a crash")
    _died_while_running(app, job_id)
    with app.app_context():
        report = jobs.sweep_report()
    assert [r["id"] for r in report.recovered] == [job_id]
    assert report.pushed == [job_id]
    record = _record(app, job_id)
    assert record.status == JobStatus.ENQUEUED and record.recoveries == 1
    assert record.lost_at is not None and record.recovered_at is not None
    [event] = _events(app, "job.recovered")
    assert event.subject_id == job_id and event.details["worker"] == "worker-1:4242"
    drain(app)
    assert _notes(app) == ["after a crash"]
    record = _record(app, job_id)
    assert record.status == JobStatus.DONE and record.attempts == 2


def test_sweep_when_running_job_heartbeat_fresh_leaves_it_running(app):
    job_id = _enqueued(app, note, "slow but alive")
    _died_while_running(app, job_id, silent_for=5)  # well inside the 90 s timeout
    with app.app_context():
        report = jobs.sweep_report()
    assert report.recovered == [] and report.pushed == []
    record = _record(app, job_id)
    assert record.status == JobStatus.RUNNING and record.recoveries == 0


def test_sweep_when_worker_died_on_last_attempt_fails_job_with_reason(app):
    job_id = _enqueued(app, note, "x", max_attempts=2)
    _died_while_running(app, job_id, attempts=2)
    with app.app_context():
        report = jobs.sweep_report()
    assert [r["id"] for r in report.failed] == [job_id] and report.pushed == []
    record = _record(app, job_id)
    assert record.status == JobStatus.FAILED
    assert "worker-1:4242" in record.error and "died" in record.error
    assert len(_events(app, "job.worker_lost")) == 1


def test_run_job_when_slow_keeps_heartbeat_and_is_never_taken_back(app):
    app.config["JOB_HEARTBEAT_TIMEOUT_SECONDS"] = 1.5  # beats every 0.5 s
    job_id = _enqueued(app, slow, 3.0)
    worker = threading.Thread(target=drain, args=(app,))
    worker.start()
    recovered = []
    while worker.is_alive():  # a sweeper running all along, as other workers would
        with app.app_context():
            recovered += jobs.sweep_report().recovered
        worker.join(0.3)
    assert recovered == []
    record = _record(app, job_id)
    assert record.status == JobStatus.DONE and record.attempts == 1 and record.recoveries == 0
    assert _notes(app) == ["slept 3.0"]


def test_run_job_when_job_was_handed_on_keeps_new_attempts_outcome(app):
    job_id = _enqueued(app, note, "zombie")
    with app.app_context():
        assert jobs.run_job(job_id) == {"note": "zombie"}
        # A presumed-dead first attempt finishing late must not overwrite the second's outcome.
        record = db.session.get(JobRecord, job_id)
        record.status, record.attempts = JobStatus.RUNNING, 2
        db.session.commit()
        assert runner._finish(job_id, 1, status=JobStatus.FAILED, error="late") is False
    assert _record(app, job_id).status == JobStatus.RUNNING


def test_jobs_sweep_command_when_worker_died_prints_recovered_job(app, runner):
    job_id = _enqueued(app, note, "x")
    _died_while_running(app, job_id)
    result = runner.invoke(args=["jobs", "sweep"])
    assert result.exit_code == 0, result.output
    assert f"Recovered job {job_id} (tests.jobs.sample_jobs.note): its worker worker-1:4242 died" in (
        result.output
    )
    assert "Re-enqueued 1 lost job(s)." in result.output


def test_jobs_page_when_job_recovered_shows_worker_died_and_retry(app, client, auth, tenants):
    job_id = _enqueued(app, note, "x")
    _died_while_running(app, job_id, silent_for=600)
    with app.app_context():
        jobs.sweep_report()
    drain(app)
    assert auth.login().status_code == 302
    page = client.get("/admin/jobs").get_data(as_text=True)
    record = _record(app, job_id)
    died, retried = formatting.datetime(record.lost_at), formatting.datetime(record.started_at)
    assert f"Worker died at {died}; retried at {retried}" in page
    assert "2 / 3" in page  # the attempt that died and the one that finished
    assert "No failed job." in page


def test_upload_status_when_parse_job_recovered_says_parsing_again(app, partner):
    with app.app_context():
        data = io.BytesIO(csv_bytes(ROW1))
        p = db.session.get(Partner, partner)
        upload = receive_upload(p, data, "a.csv", user=None, max_bytes=1 << 20)
        db.session.commit()
        upload_id, job_id = upload.id, upload.job_id
        assert upload.status_summary.label == "Parsing…"
    _died_while_running(app, job_id)
    with app.app_context():
        jobs.sweep_report()
        upload = db.session.get(Upload, upload_id)
        assert upload.status_summary.label == "Parsing again after the worker running it stopped…"
