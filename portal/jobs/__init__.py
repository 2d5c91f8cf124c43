"""Durable background jobs: record in the database, hand to RQ after commit, sweep what was lost.

`enqueue()` adds a JobRecord to the caller's transaction; only after that transaction commits is
the job pushed to RQ, so a rollback enqueues nothing and a Redis outage loses nothing: the sweeper
(run at worker start and every JOB_SWEEP_SECONDS) pushes again every record that never ran.
Jobs take ids and are idempotent; `run_job` claims a record atomically so a job pushed twice runs once.
While a job runs, a heartbeat thread refreshes its record; the sweeper hands back a running job
whose heartbeat stopped (its worker died), so it runs again within minutes, not after its timeout.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import socket
import threading
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import fakeredis
import redis
from flask import current_app
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import StartedJobRegistry
from sqlalchemy import event, func, select, update

from portal.core import audit
from portal.extensions import db
from portal.models.base import utcnow
from portal.models.jobs import JobRecord, JobStatus

log = logging.getLogger(__name__)

# Queues named by workload, so a deployment can give slow work its own workers.
QUEUES = ("default", "ingest", "invoices", "render", "delivery")
RETRY_INTERVALS = [10, 60, 300, 900]
JOB_TIMEOUT = 30 * 60
# A record older than this that RQ does not know about is considered lost and pushed again.
LOST_AFTER = timedelta(seconds=30)


def init_app(app) -> None:
    """Create the Redis connection: real Redis when REDIS_URL is set, else an in-process fakeredis."""
    if app.config["REDIS_URL"]:
        app.extensions["redis"] = redis.Redis.from_url(
            app.config["REDIS_URL"], socket_connect_timeout=2, socket_timeout=10
        )
    else:
        app.extensions["redis"] = fakeredis.FakeRedis(server=fakeredis.FakeServer())


def get_connection() -> redis.Redis:
    return current_app.extensions["redis"]


def get_queue(name: str = "default") -> Queue:
    return Queue(name, connection=get_connection())


def enqueue(
    func,
    *args,
    queue: str = "default",
    description: str = "",
    max_attempts: int = 3,
    retry_intervals: list[int] | None = None,
) -> JobRecord:
    """Record a job in the current transaction; it is handed to RQ when the transaction commits.

    `func` is a function in the `portal` package (or its dotted path); `args` must be JSON values
    (ids, not objects). `retry_intervals` (seconds before each retry) overrides the default back-off,
    e.g. for webhook deliveries that must keep trying for days.
    """
    path = func if isinstance(func, str) else f"{func.__module__}.{func.__qualname__}"
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}")
    _resolve(path)  # fail now, in the caller, rather than later in a worker
    record = JobRecord(
        func=path,
        args=list(args),
        queue=queue,
        description=description or path,
        max_attempts=max_attempts,
        retry_intervals=list(retry_intervals) if retry_intervals else None,
    )
    db.session.add(record)
    db.session.flush()
    db.session.info.setdefault("portal_jobs_to_push", []).append(record.id)
    return record


def _resolve(path: str):
    module_name, _, attr = path.rpartition(".")
    if not module_name.startswith(tuple(current_app.config["JOB_MODULE_PREFIXES"])):
        raise ValueError(f"jobs must be functions of the portal package, not {path!r}")
    return getattr(importlib.import_module(module_name), attr)


@event.listens_for(db.session, "after_commit")
def _push_after_commit(session) -> None:
    # A savepoint ending (begin_nested) fires this too; only the outer commit makes jobs visible.
    if session.in_nested_transaction():
        return
    ids = session.info.pop("portal_jobs_to_push", [])
    if ids:
        push_to_rq(ids)


@event.listens_for(db.session, "after_rollback")
def _forget_after_rollback(session) -> None:
    if session.in_nested_transaction():  # a savepoint rolled back; the outer transaction goes on
        return
    session.info.pop("portal_jobs_to_push", None)


def push_to_rq(ids: list[str]) -> int:
    """Hand recorded jobs to RQ; on a Redis error leave them pending for the sweeper.

    Runs after the commit, on its own connection, because the committed session cannot emit SQL.
    """
    return len(_push(ids))


def _push(ids: list[str]) -> list[str]:
    pushed = []
    with db.engine.connect() as conn:
        rows = conn.execute(
            select(
                JobRecord.id,
                JobRecord.queue,
                JobRecord.max_attempts,
                JobRecord.description,
                JobRecord.retry_intervals,
                JobRecord.attempts,
            ).where(JobRecord.id.in_(ids))
        ).all()
    for job_id, queue_name, max_attempts, description, intervals, attempts in rows:
        try:
            # A job the sweeper pushes again after some tries (its scheduled retry was lost with
            # Redis) keeps the rest of its schedule and of its tries, not a fresh set: a webhook's
            # back-off still spans its days, and it is not tried max_attempts times over again.
            done = attempts or 0
            retries = max(max_attempts - done - 1, 0)
            schedule = intervals or RETRY_INTERVALS
            intervals = schedule[done:] or schedule[-1:]
            get_queue(queue_name).enqueue_call(
                "portal.jobs.run_job",
                args=(job_id,),
                job_id=job_id,
                description=description,
                timeout=JOB_TIMEOUT,
                retry=Retry(max=retries, interval=intervals[:retries]) if retries else None,
                failure_ttl=7 * 24 * 3600,
            )
        except redis.RedisError as exc:
            log.warning("queue unreachable, job %s stays pending for the sweeper: %s", job_id, exc)
            continue
        pushed.append(job_id)
    if pushed:
        with db.engine.begin() as conn:
            conn.execute(
                update(JobRecord)
                .where(JobRecord.id.in_(pushed), JobRecord.status == JobStatus.PENDING)
                .values(status=JobStatus.ENQUEUED, enqueued_at=utcnow())
            )
    return pushed


def _rq_knows(job_id: str) -> bool:
    """True if RQ still holds this job in a state from which it will run (queued, scheduled, started)."""
    try:
        job = Job.fetch(job_id, connection=get_connection())
    except NoSuchJobError:
        return False
    return job.get_status(refresh=False) in ("queued", "scheduled", "started", "deferred")


@dataclass
class SweepReport:
    """What one sweep did: jobs pushed to RQ again, and running jobs taken back from dead workers."""

    pushed: list[str] = field(default_factory=list)
    recovered: list[dict] = field(default_factory=list)  # handed back to run again
    failed: list[dict] = field(default_factory=list)  # their worker died on their last attempt

    def lines(self) -> list[str]:
        """One line per job for an operator (`flask jobs sweep`)."""
        out = []
        for r in self.recovered:
            out.append(
                f"Recovered job {r['id']} ({r['description']}): its worker {r['worker'] or '?'} died "
                f"(last heartbeat {r['lost_at']:%Y-%m-%d %H:%M:%S} UTC) on attempt {r['attempt']} "
                f"of {r['max_attempts']}; re-enqueued."
            )
        for r in self.failed:
            out.append(
                f"Failed job {r['id']} ({r['description']}): its worker {r['worker'] or '?'} died "
                f"(last heartbeat {r['lost_at']:%Y-%m-%d %H:%M:%S} UTC) on its last attempt "
                f"({r['attempt']} of {r['max_attempts']}); retry it under Admin -> Jobs."
            )
        return out


def heartbeat_timeout() -> timedelta:
    return timedelta(seconds=current_app.config.get("JOB_HEARTBEAT_TIMEOUT_SECONDS", 90))


def heartbeat_interval(timeout: timedelta) -> float:
    """How often a running job refreshes its heartbeat: six beats per timeout (15 s for 90 s)."""
    return max(timeout.total_seconds() / 6, 0.5)


def sweep() -> int:
    """Push again every job that was recorded but that RQ does not hold; return how many."""
    return len(sweep_report().pushed)


def sweep_report() -> SweepReport:
    """Take back running jobs whose worker died, then push every lost job to RQ again.

    Covers: Redis down at commit time, a crash between commit and push, Redis (or fakeredis)
    restarted empty, and a worker killed mid-job: its heartbeat stops, and once it is older than
    JOB_HEARTBEAT_TIMEOUT_SECONDS the job is run again (jobs are idempotent, so that is safe).
    """
    report = SweepReport()
    report.recovered, report.failed = _take_back_dead()
    cutoff = utcnow() - LOST_AFTER
    candidates = db.session.scalars(
        select(JobRecord).where(
            JobRecord.status.in_([JobStatus.PENDING, JobStatus.ENQUEUED, JobStatus.RETRYING])
            & (JobRecord.created_at < cutoff)
        )
    ).all()
    recovered = [r["id"] for r in report.recovered]
    try:
        for r in report.recovered:
            _forget_started(r["id"], r["queue"])
        lost = recovered + [r.id for r in candidates if r.id not in recovered and not _rq_knows(r.id)]
    except redis.RedisError as exc:
        log.warning("sweeper: queue unreachable: %s", exc)
        db.session.commit()
        return report
    db.session.commit()
    if lost:
        report.pushed = _push(lost)
    return report


def _take_back_dead() -> tuple[list[dict], list[dict]]:
    """Running jobs whose heartbeat is older than the timeout: back to pending, or failed if that
    was their last attempt. Each take-back is one UPDATE guarded by the stale heartbeat and the
    attempt, so a job that beat meanwhile (slow, not dead) is never taken, and of two sweepers
    only one takes it. Audited as `job.recovered` / `job.worker_lost`; the caller commits.
    """
    now = utcnow()
    last_beat = func.coalesce(JobRecord.heartbeat_at, JobRecord.started_at)
    limit = now - heartbeat_timeout()
    rows = db.session.execute(
        select(
            JobRecord.id,
            JobRecord.attempts,
            JobRecord.max_attempts,
            JobRecord.description,
            JobRecord.queue,
            JobRecord.worker,
            last_beat.label("last_beat"),
        ).where(JobRecord.status == JobStatus.RUNNING, last_beat < limit)
    ).all()
    recovered, failed = [], []
    for row in rows:
        lost_at = row.last_beat
        if lost_at is not None and lost_at.tzinfo is None:  # SQLite hands coalesce() back naive
            lost_at = lost_at.replace(tzinfo=now.tzinfo)
        last_try = row.attempts >= row.max_attempts
        values = {
            "status": JobStatus.FAILED if last_try else JobStatus.PENDING,
            "lost_at": lost_at,
            "recovered_at": now,
            "recoveries": JobRecord.recoveries + 1,
        }
        info = {
            "id": row.id,
            "description": row.description,
            "queue": row.queue,
            "worker": row.worker,
            "lost_at": lost_at,
            "attempt": row.attempts,
            "max_attempts": row.max_attempts,
        }
        if last_try:
            values["finished_at"] = now
            values["error"] = (
                f"The worker running this job ({row.worker or 'unknown'}) died: last heard from at "
                f"{lost_at:%Y-%m-%d %H:%M:%S} UTC, on attempt {row.attempts} of {row.max_attempts}."
            )
        taken = db.session.execute(
            update(JobRecord)
            .where(
                JobRecord.id == row.id,
                JobRecord.status == JobStatus.RUNNING,
                JobRecord.attempts == row.attempts,
                last_beat < limit,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not taken:
            continue
        action = "job.worker_lost" if last_try else "job.recovered"
        log.warning(
            "%s job=%s %s: worker %s last heard from at %s; %s",
            action,
            row.id,
            row.description,
            row.worker,
            _iso(lost_at),
            "failed (no attempts left)" if last_try else "re-enqueued",
        )
        audit.record(
            action,
            subject_type="JobRecord",
            subject_id=row.id,
            actor_label="sweeper",
            details={
                "description": row.description,
                "worker": row.worker,
                "last_heartbeat": _iso(lost_at),
                "attempt": row.attempts,
                "max_attempts": row.max_attempts,
            },
        )
        (failed if last_try else recovered).append(info)
    return recovered, failed


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


def _forget_started(job_id: str, queue_name: str) -> None:
    """Drop a dead worker's claim on the job from RQ's started registry, so RQ's own abandoned-job
    cleanup does not later retry (or fail) the copy we push again."""
    try:
        job = Job.fetch(job_id, connection=get_connection())
    except NoSuchJobError:
        return
    StartedJobRegistry(queue_name, connection=get_connection()).remove_executions(job)


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
            result = _resolve(record.func)(*record.args)
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


def set_progress(record_id: str, **progress) -> None:
    """Store a job's progress (e.g. rows=1200) where the status fragment can poll it.

    Progress is ephemeral, so it lives in Redis (fakeredis in embedded mode) with a TTL: writing it
    to the database would need a second connection while the job's own transaction holds SQLite's
    write lock.
    """
    try:
        get_connection().set(f"portal:progress:{record_id}", json.dumps(progress), ex=24 * 3600)
    except redis.RedisError as exc:  # progress is a courtesy; never fail a job for it
        log.warning("could not record progress of job %s: %s", record_id, exc)


def get_progress(record_id: str | None) -> dict:
    if not record_id:
        return {}
    try:
        raw = get_connection().get(f"portal:progress:{record_id}")
    except redis.RedisError:
        return {}
    return json.loads(raw) if raw else {}


def retry(record: JobRecord) -> None:
    """Put a failed job back in line (an admin's retry); it is pushed when the caller commits."""
    if record.status != JobStatus.FAILED:
        raise ValueError(f"only failed jobs can be retried; this one is {record.status}")
    record.status = JobStatus.PENDING
    record.attempts = 0
    record.error = None
    db.session.info.setdefault("portal_jobs_to_push", []).append(record.id)


def cron_sweep() -> int:
    """Periodic entry point for RQ's cron scheduler."""
    return sweep()
