"""Handing jobs to RQ: the Redis connection, the queues, `enqueue` (a JobRecord in the caller's
transaction, pushed to RQ once it commits), an admin's retry, and job progress kept in Redis.

`enqueue()` adds a JobRecord to the caller's transaction; only after that transaction commits is
the job pushed to RQ, so a rollback enqueues nothing and a Redis outage loses nothing: the sweeper
(portal/jobs/sweeper.py) pushes again every record that never ran.
"""

from __future__ import annotations

import json
import logging
import uuid

import fakeredis
import redis
from flask import current_app
from rq import Queue, Retry
from sqlalchemy import event, insert, select, update

from portal.extensions import db
from portal.jobs.runner import resolve, run_job
from portal.models.base import utcnow
from portal.models.jobs import JobRecord, JobStatus

log = logging.getLogger(__name__)

# Queues named by workload, so a deployment can give slow work its own workers.
QUEUES = ("default", "ingest", "invoices", "render", "delivery")
RETRY_INTERVALS = [10, 60, 300, 900]
JOB_TIMEOUT = 30 * 60


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
    resolve(path)  # fail now, in the caller, rather than later in a worker
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


def enqueue_many(
    func, args_list: list[tuple], *, queue: str = "default", descriptions: list[str] | None = None
) -> list[str]:
    """`enqueue` for many calls of one function (a batch's notifications): one multi-row INSERT of
    the records, handed to RQ together after the commit. Returns the records' ids."""
    if not args_list:
        return []
    path = func if isinstance(func, str) else f"{func.__module__}.{func.__qualname__}"
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}")
    resolve(path)
    now = utcnow()
    rows = [
        {
            "id": str(uuid.uuid4()),
            "func": path,
            "args": list(args),
            "queue": queue,
            "description": (descriptions[i] if descriptions else path)[:200],
            "status": JobStatus.PENDING,
            "attempts": 0,
            "max_attempts": 3,
            "progress": {},
            "created_at": now,
        }
        for i, args in enumerate(args_list)
    ]
    db.session.execute(insert(JobRecord), rows)
    ids = [row["id"] for row in rows]
    db.session.info.setdefault("portal_jobs_to_push", []).extend(ids)
    return ids


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
    return len(push(ids))


def push(ids: list[str]) -> list[str]:
    """Hand these recorded jobs to RQ (each keeps the rest of its tries); return the ids handed over."""
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
    by_queue: dict[str, list] = {}
    for job_id, queue_name, max_attempts, description, intervals, attempts in rows:
        # A job the sweeper pushes again after some tries (its scheduled retry was lost with
        # Redis) keeps the rest of its schedule and of its tries, not a fresh set: a webhook's
        # back-off still spans its days, and it is not tried max_attempts times over again.
        done = attempts or 0
        retries = max(max_attempts - done - 1, 0)
        schedule = intervals or RETRY_INTERVALS
        intervals = schedule[done:] or schedule[-1:]
        by_queue.setdefault(queue_name, []).append(
            Queue.prepare_data(
                run_job,
                args=(job_id,),
                job_id=job_id,
                description=description,
                timeout=JOB_TIMEOUT,
                retry=Retry(max=retries, interval=intervals[:retries]) if retries else None,
                failure_ttl=7 * 24 * 3600,
            )
        )
    # One pipelined round trip per queue, however many jobs a batch recorded.
    for queue_name, datas in by_queue.items():
        try:
            get_queue(queue_name).enqueue_many(datas)
        except redis.RedisError as exc:
            log.warning("queue unreachable, %d job(s) stay pending for the sweeper: %s", len(datas), exc)
            continue
        pushed.extend(d.job_id for d in datas)
    if pushed:
        with db.engine.begin() as conn:
            conn.execute(
                update(JobRecord)
                .where(JobRecord.id.in_(pushed), JobRecord.status == JobStatus.PENDING)
                .values(status=JobStatus.ENQUEUED, enqueued_at=utcnow())
            )
    return pushed


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
