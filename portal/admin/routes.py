"""Admin pages: the landing page with the counts that matter and the latest audit events."""

from flask import render_template
from sqlalchemy import func, select

from portal.admin import bp
from portal.extensions import db
from portal.models import AuditEvent, Customer, JobRecord, JobStatus, Partner, User


@bp.route("/")
def index():
    """Overview for admins: how many partners, customers, users; failed jobs; recent audit events."""
    counts = {
        "partners": db.session.scalar(select(func.count(Partner.id))),
        "customers": db.session.scalar(select(func.count(Customer.id))),
        "users": db.session.scalar(select(func.count(User.id))),
        "failed_jobs": db.session.scalar(
            select(func.count(JobRecord.id)).where(JobRecord.status == JobStatus.FAILED)
        ),
    }
    events = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(20)).all()
    return render_template("admin/index.html", counts=counts, events=events)
