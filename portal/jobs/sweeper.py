"""The sweeper: take back running jobs whose worker died (their heartbeat stopped), and push again
every recorded job that RQ lost (Redis down at commit, a crash before the push, Redis restarted).

Run at worker start, every JOB_SWEEP_SECONDS (portal/jobs/workers.py), and by `flask jobs sweep`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import redis
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import StartedJobRegistry
from sqlalchemy import func, select, update

from portal.core import audit
from portal.extensions import db
from portal.jobs.queue import get_connection, push
from portal.jobs.runner import heartbeat_timeout
from portal.models.base import utcnow
from portal.models.jobs import JobRecord, JobStatus

log = logging.getLogger(__name__)

# A record older than this that RQ does not know about is considered lost and pushed again.
LOST_AFTER = timedelta(seconds=30)


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
        report.pushed = push(lost)
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


def cron_sweep() -> int:
    """Periodic entry point for RQ's cron scheduler."""
    return sweep()
