"""Durable records of background jobs, written in the same transaction as the work that needs them.

RQ holds jobs in Redis, which may be down or (in embedded mode) forget everything on restart; this
table is the source of truth that the sweeper uses to hand unrun jobs to RQ again.
"""

from __future__ import annotations

import enum
import uuid

from sqlalchemy import JSON, Enum, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models.base import UTCDateTime, utcnow


class JobStatus(enum.StrEnum):
    PENDING = "pending"  # recorded, not yet handed to RQ (or RQ was unreachable)
    ENQUEUED = "enqueued"  # handed to RQ
    RUNNING = "running"  # claimed by a worker, which refreshes heartbeat_at while it works
    RETRYING = "retrying"  # failed, RQ will run it again
    DONE = "done"
    FAILED = "failed"  # failed for good; an admin can retry it


class JobRecord(db.Model):
    __tablename__ = "job_records"
    __table_args__ = (Index("ix_job_records_status_created", "status", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    func: Mapped[str] = mapped_column(String(200))
    args: Mapped[list] = mapped_column(JSON, default=list)
    queue: Mapped[str] = mapped_column(String(32), default="default")
    description: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[JobStatus] = mapped_column(
        Enum(JobStatus, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e]),
        default=JobStatus.PENDING,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    # Seconds to wait before each retry; NULL = the default back-off (jobs.RETRY_INTERVALS).
    retry_intervals: Mapped[list | None] = mapped_column(JSON)
    progress: Mapped[dict] = mapped_column(JSON, default=dict)
    result: Mapped[dict | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    enqueued_at = mapped_column(UTCDateTime, nullable=True)
    started_at = mapped_column(UTCDateTime, nullable=True)
    finished_at = mapped_column(UTCDateTime, nullable=True)
    # Refreshed every few seconds by the process running the job; a running job whose heartbeat is
    # older than JOB_HEARTBEAT_TIMEOUT_SECONDS lost its worker and is handed back by the sweeper.
    heartbeat_at = mapped_column(UTCDateTime, nullable=True)
    worker: Mapped[str | None] = mapped_column(String(200))  # "host:pid" of the current attempt
    # Dead-worker recoveries: how many, when the dead worker was last heard from, when handed back.
    recoveries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    lost_at = mapped_column(UTCDateTime, nullable=True)
    recovered_at = mapped_column(UTCDateTime, nullable=True)

    @property
    def finished(self) -> bool:
        return self.status in (JobStatus.DONE, JobStatus.FAILED)

    @property
    def retry_reason(self) -> str | None:
        """Why this unfinished job is being tried again, in words for its owner, or None."""
        if self.finished:
            return None
        if self.recoveries and self.status != JobStatus.RETRYING:
            return "the worker running it stopped"
        if self.status == JobStatus.RETRYING:
            return "a failure"
        return None

    def __repr__(self) -> str:
        return f"<JobRecord {self.func} {self.status}>"
