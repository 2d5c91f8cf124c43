"""Running a job: claim its record atomically (a job pushed twice runs once), call the function
with a heartbeat thread beating, and record the outcome unless the job was handed on meanwhile.

Jobs take ids and are idempotent. While a job runs, its heartbeat tells the sweeper this worker is
alive; a worker that dies stops beating, and the sweeper hands the job back.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import threading
import traceback
from datetime import timedelta

from flask import current_app
from sqlalchemy import update

from portal.extensions import db
from portal.models.base import utcnow
from portal.models.jobs import JobRecord, JobStatus

log = logging.getLogger(__name__)


def resolve(path: str):
    """The job function named by `path`, which must be in the portal package (JOB_MODULE_PREFIXES)."""
    module_name, _, attr = path.rpartition(".")
    if not module_name.startswith(tuple(current_app.config["JOB_MODULE_PREFIXES"])):
        raise ValueError(f"jobs must be functions of the portal package, not {path!r}")
    return getattr(importlib.import_module(module_name), attr)


def heartbeat_timeout() -> timedelta:
    return timedelta(seconds=current_app.config.get("JOB_HEARTBEAT_TIMEOUT_SECONDS", 90))


def heartbeat_interval(timeout: timedelta) -> float:
    """How often a running job refreshes its heartbeat: six beats per timeout (15 s for 90 s)."""
    return max(timeout.total_seconds() / 6, 0.5)


WORKER_NAME_FORMAT = "{host}:{pid}"


def worker_name() -> str:
    """This process, as shown on Admin -> Jobs: the work horse of worker.py, or the web process."""
    return WORKER_NAME_FORMAT.format(host=socket.gethostname(), pid=os.getpid())


class _Heartbeat:
    """Refreshes a running job's heartbeat_at from a thread, on its own connection.

    Runs in the process that runs the job (a forked work horse, or the embedded worker), so the
    beats stop exactly when that process dies. If the record is no longer this attempt's (a sweeper
    presumed us dead and handed the job on), it says so and stops.
    """

    def __init__(self, engine, record_id: str, attempt: int, interval: float):
        self.engine, self.record_id, self.attempt, self.interval = engine, record_id, attempt, interval
        self.stopped = threading.Event()
        self.lost = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"job-heartbeat-{record_id}", daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join(timeout=5)

    def _run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                with self.engine.begin() as conn:
                    mine = conn.execute(
                        update(JobRecord)
                        .where(
                            JobRecord.id == self.record_id,
                            JobRecord.status == JobStatus.RUNNING,
                            JobRecord.attempts == self.attempt,
                        )
                        .values(heartbeat_at=utcnow())
                    ).rowcount
            except Exception as exc:  # a missed beat is retried; the timeout allows several
                log.warning("job %s: heartbeat not recorded: %s", self.record_id, exc)
                continue
            if not mine:
                log.error("job %s: handed to another worker while still running here", self.record_id)
                self.lost.set()
                return


def _finish(record_id: str, attempt: int, **values) -> bool:
    """Record an attempt's outcome, unless the job was handed on meanwhile; True if recorded."""
    done = db.session.execute(
        update(JobRecord)
        .where(
            JobRecord.id == record_id,
            JobRecord.status == JobStatus.RUNNING,
            JobRecord.attempts == attempt,
        )
        .values(heartbeat_at=None, **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if not done:
        log.error("job %s: attempt %d outcome not recorded, the job was handed on", record_id, attempt)
    return bool(done)


def run_job(record_id: str):
    """The function RQ runs: claim the record, call the job function, record the outcome.

    The claim is one UPDATE guarded by the status, so of two copies of the same job only one runs;
    a job taken back from a dead worker is pending again, so its re-run claims it. While the
    function runs, a heartbeat thread tells the sweeper this worker is alive.
    """
    now = utcnow()
    claimed = db.session.execute(
        update(JobRecord)
        .where(
            JobRecord.id == record_id,
            JobRecord.status.in_([JobStatus.PENDING, JobStatus.ENQUEUED, JobStatus.RETRYING]),
        )
        .values(
            status=JobStatus.RUNNING,
            attempts=JobRecord.attempts + 1,
            started_at=now,
            heartbeat_at=now,
            worker=worker_name(),
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    if not claimed:
        log.info("job %s already taken or finished; nothing to do", record_id)
        return None
    record = db.session.get(JobRecord, record_id)
    attempt, max_attempts = record.attempts, record.max_attempts
    interval = heartbeat_interval(heartbeat_timeout())
    with _Heartbeat(db.engine, record_id, attempt, interval):
        try:
            result = resolve(record.func)(*record.args)
        except Exception:
            db.session.rollback()
            last = attempt >= max_attempts
            _finish(
                record_id,
                attempt,
                error=traceback.format_exc(limit=20),
                status=JobStatus.FAILED if last else JobStatus.RETRYING,
                finished_at=utcnow() if last else None,
            )
            raise
    _finish(
        record_id,
        attempt,
        status=JobStatus.DONE,
        result=result if isinstance(result, dict) else None,
        error=None,
        finished_at=utcnow(),
    )
    return result
