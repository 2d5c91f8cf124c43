"""Deactivating, reactivating and changing the role of users; the failed-jobs page."""

from sqlalchemy import select

from portal import jobs
from portal.extensions import db
from portal.jobs import workers
from portal.models import JobRecord, JobStatus
from tests.factories import events, user_by_email


def test_users_list_when_admin_shows_role_tenant_and_last_login(admin_client):
    response = admin_client.get("/admin/users")
    assert response.status_code == 200
    assert b"partner@example.com" in response.data and b"State University" in response.data
    assert b"never" in response.data


def test_deactivate_when_no_reason_refused_and_user_stays_active(app, admin_client):
    target = user_by_email(app, "partner@example.com")
    response = admin_client.post(f"/admin/users/{target.id}/deactivate", data={"reason": "", "confirm": "y"})
    assert response.status_code == 400
    assert b'id="reason-error"' in response.data
    assert user_by_email(app, "partner@example.com").active is True


def test_deactivate_when_not_confirmed_refused(app, admin_client):
    target = user_by_email(app, "partner@example.com")
    response = admin_client.post(f"/admin/users/{target.id}/deactivate", data={"reason": "left the company"})
    assert response.status_code == 400
    assert user_by_email(app, "partner@example.com").active is True


def test_deactivate_when_confirmed_ends_session_and_writes_event(app, client, auth, tenants):
    auth.login("partner@example.com")
    assert client.get("/partner/").status_code == 200
    partner_session = client.get_cookie("session").value
    client.delete_cookie("session")  # the admin, in another browser
    auth.login()
    target = user_by_email(app, "partner@example.com")

    response = client.post(
        f"/admin/users/{target.id}/deactivate", data={"reason": "left the university", "confirm": "y"}
    )
    assert response.status_code == 302
    client.set_cookie("session", partner_session)  # back to the partner's browser
    assert client.get("/partner/").status_code == 302  # sent to the login page
    assert auth.login("partner@example.com").status_code == 401
    [event] = events(app, "user.deactivated")
    assert event.details == {
        "reason": "left the university",
        "before": {"active": True},
        "after": {"active": False},
    }
    assert event.actor_label == "admin@example.com"


def test_deactivate_when_self_refused(app, admin_client):
    me = user_by_email(app, "admin@example.com")
    response = admin_client.post(f"/admin/users/{me.id}/deactivate", data={"reason": "oops", "confirm": "y"})
    assert response.status_code == 400
    assert user_by_email(app, "admin@example.com").active is True
    assert events(app, "user.deactivated") == []


def test_reactivate_when_deactivated_user_can_log_in_again(app, admin_client, auth):
    target = user_by_email(app, "customer@example.com")
    admin_client.post(f"/admin/users/{target.id}/deactivate", data={"reason": "on leave", "confirm": "y"})
    assert admin_client.post(f"/admin/users/{target.id}/reactivate").status_code == 302
    auth.logout()
    assert auth.login("customer@example.com").status_code == 302
    assert events(app, "user.reactivated")[0].details == {
        "before": {"active": False},
        "after": {"active": True},
    }


def test_change_role_when_partner_made_customer_audits_before_after(app, admin_client, tenants):
    target = user_by_email(app, "partner@example.com")
    response = admin_client.post(
        f"/admin/users/{target.id}", data={"role": "customer", "customer": tenants["customer"], "partner": 0}
    )
    assert response.status_code == 302
    changed = user_by_email(app, "partner@example.com")
    assert (changed.role.value, changed.customer_id, changed.partner_id) == (
        "customer",
        tenants["customer"],
        None,
    )
    [event] = events(app, "user.role_changed")
    assert event.details == {
        "before": {"role": "partner", "partner_id": tenants["partner"], "customer_id": None},
        "after": {"role": "customer", "partner_id": None, "customer_id": tenants["customer"]},
    }


def test_change_role_when_customer_without_customer_shows_error(app, admin_client):
    target = user_by_email(app, "partner@example.com")
    response = admin_client.post(
        f"/admin/users/{target.id}", data={"role": "customer", "customer": 0, "partner": 0}
    )
    assert response.status_code == 400
    assert b'id="customer-error"' in response.data
    assert user_by_email(app, "partner@example.com").role.value == "partner"


def _failed_job(app) -> str:
    with app.app_context():
        record = jobs.enqueue("tests.jobs.sample_jobs.always_fails", "x", max_attempts=1)
        db.session.commit()
        record_id = record.id
    workers.drain(app)
    with app.app_context():
        assert db.session.get(JobRecord, record_id).status == JobStatus.FAILED
    return record_id


def test_failed_jobs_page_when_job_failed_shows_error(app, admin_client):
    _failed_job(app)
    response = admin_client.get("/admin/jobs")
    assert response.status_code == 200
    assert b"cannot do x" in response.data and b"<details>" in response.data


def test_job_retry_when_failed_requeues_and_runs_again(app, admin_client):
    record_id = _failed_job(app)
    response = admin_client.post(f"/admin/jobs/{record_id}/retry")
    assert response.status_code == 302
    with app.app_context():
        record = db.session.get(JobRecord, record_id)
        assert record.status in (JobStatus.PENDING, JobStatus.ENQUEUED)
        assert record.error is None
    assert len(events(app, "job.retried")) == 1
    workers.drain(app)
    with app.app_context():
        record = db.session.get(JobRecord, record_id)
        assert record.status == JobStatus.FAILED and record.attempts == 1
        assert "cannot do x" in record.error


def test_job_retry_when_not_failed_changes_nothing(app, admin_client):
    record_id = _failed_job(app)
    admin_client.post(f"/admin/jobs/{record_id}/retry")
    admin_client.post(f"/admin/jobs/{record_id}/retry")
    assert len(events(app, "job.retried")) == 1
    with app.app_context():
        assert (
            db.session.scalar(select(JobRecord.status).where(JobRecord.id == record_id)) != JobStatus.FAILED
        )
