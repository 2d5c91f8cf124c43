"""Admin pages for background jobs: those that failed for good (with Retry) and those handed back
after their worker died."""

from __future__ import annotations

from datetime import timedelta

from flask import flash, redirect, render_template, url_for
from sqlalchemy import select

from portal import jobs
from portal.admin import bp
from portal.core import audit
from portal.extensions import db
from portal.models import JobRecord, JobStatus
from portal.models.base import utcnow
from portal.web.forms import EmptyForm
from portal.web.pagination import paginate

PAGE_SIZE = 50
RECOVERED_SHOWN_DAYS = 7


@bp.route("/jobs")
def failed_jobs():
    """Background jobs that failed for good, newest first, with their error and a Retry button;
    above them, the jobs handed back after their worker died (last 7 days), with their outcome."""
    recovered = db.session.scalars(
        select(JobRecord)
        .where(
            JobRecord.recoveries > 0,
            JobRecord.recovered_at >= utcnow() - timedelta(days=RECOVERED_SHOWN_DAYS),
        )
        .order_by(JobRecord.recovered_at.desc())
        .limit(PAGE_SIZE)
    ).all()
    failed = select(JobRecord).where(JobRecord.status == JobStatus.FAILED)
    page = paginate(
        failed.order_by(JobRecord.finished_at.desc(), JobRecord.created_at.desc()), per_page=PAGE_SIZE
    )
    return render_template(
        "admin/console/jobs.html",
        jobs=page.items,
        recovered=recovered,
        recovered_days=RECOVERED_SHOWN_DAYS,
        page=page.page,
        pages=page.pages,
        total=page.total,
        form=EmptyForm(),
    )


@bp.route("/jobs/<job_id>/retry", methods=["POST"])
def job_retry(job_id: str):
    """Put a failed job back in line (jobs.retry); audit `job.retried`."""
    record = db.get_or_404(JobRecord, job_id)
    if not EmptyForm().validate_on_submit():
        return redirect(url_for("admin.failed_jobs"))
    try:
        jobs.retry(record)
    except ValueError as exc:
        flash(str(exc), "error")
        return redirect(url_for("admin.failed_jobs"))
    audit.record(
        "job.retried",
        subject_type="JobRecord",
        subject_id=record.id,
        details={"func": record.func, "description": record.description},
    )
    db.session.commit()
    flash(f"Job “{record.description or record.func}” is queued again.", "success")
    return redirect(url_for("admin.failed_jobs"))
