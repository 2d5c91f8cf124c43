"""Invitations, forgotten passwords and one-time set-password links."""

import time

from itsdangerous.timed import TimestampSigner
from sqlalchemy import select

from portal.auth import tokens
from portal.extensions import db
from portal.jobs.workers import drain
from portal.models import JobRecord, JobStatus, User
from tests.factories import events, link_token, user_by_email

NEW_PASSWORD = "a brand new long passphrase"


def _invite(client, tenants, email="new.contact@example.com"):
    return client.post(
        "/admin/users/invite",
        data={
            "email": email,
            "name": "New Contact",
            "role": "customer",
            "customer": tenants["customer"],
            "partner": 0,
        },
    )


def test_invite_when_link_used_sets_password_login_works_and_second_use_refused(
    smtp_app, smtp_server, client, auth, tenants
):
    _, handler = smtp_server
    auth.login()
    assert _invite(client, tenants).status_code == 302
    user = user_by_email(smtp_app, "new.contact@example.com")
    assert user is not None and user.password_hash is None and user.customer_id == tenants["customer"]
    assert len(handler.envelopes) == 1
    assert handler.envelopes[0].rcpt_tos == ["new.contact@example.com"]
    token = link_token(handler.envelopes[0].content)
    auth.logout()

    assert client.get(f"/set-password/{token}").status_code == 200
    response = client.post(f"/set-password/{token}", data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert auth.login("new.contact@example.com", NEW_PASSWORD).headers["Location"] == "/customer/"
    auth.logout()

    again = client.post(
        f"/set-password/{token}", data={"password": "another password 123", "confirm": "another password 123"}
    )
    assert again.status_code == 400
    assert b"already been used" in again.data
    assert [e.details["purpose"] for e in events(smtp_app, "auth.password_set")] == ["invite"]
    assert len(events(smtp_app, "user.invited")) == 1


def test_invite_when_partner_role_without_partner_shows_error_next_to_field(admin_client, tenants):
    response = admin_client.post(
        "/admin/users/invite", data={"email": "p@example.com", "role": "partner", "partner": 0, "customer": 0}
    )
    assert response.status_code == 400
    assert b'id="partner-error"' in response.data and b"needs a partner" in response.data


def test_invite_when_email_taken_shows_error_next_to_email(admin_client, tenants):
    response = admin_client.post(
        "/admin/users/invite",
        data={"email": "partner@example.com", "role": "admin", "partner": 0, "customer": 0},
    )
    assert response.status_code == 400
    assert b'id="email-error"' in response.data


def test_forgot_password_when_known_email_mails_reset_link_that_works(
    smtp_app, smtp_server, client, auth, tenants
):
    _, handler = smtp_server
    response = client.post("/forgot-password", data={"email": "partner@example.com"})
    assert response.status_code == 302
    assert handler.envelopes == []  # mailed by a job, not by the request
    drain(smtp_app)
    assert len(handler.envelopes) == 1
    token = link_token(handler.envelopes[0].content)
    assert (
        client.post(
            f"/set-password/{token}", data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
        ).status_code
        == 302
    )
    assert auth.login("partner@example.com", NEW_PASSWORD).status_code == 302
    assert len(events(smtp_app, "auth.password_reset_requested")) == 1
    assert [e.details["purpose"] for e in events(smtp_app, "auth.password_set")] == ["reset"]


def test_forgot_password_when_unknown_email_same_message_and_no_mail(smtp_app, smtp_server, client, tenants):
    _, handler = smtp_server
    known = client.post("/forgot-password", data={"email": "partner@example.com"}, follow_redirects=True)
    unknown = client.post("/forgot-password", data={"email": "nobody@example.com"}, follow_redirects=True)
    assert b"If an account exists for that address" in unknown.data
    assert unknown.status_code == known.status_code == 200
    drain(smtp_app)
    assert len(handler.envelopes) == 1  # only the known address got mail
    assert len(events(smtp_app, "auth.password_reset_requested")) == 1


def test_forgot_password_when_mail_server_down_same_answer_and_job_retries(app, client, tenants):
    """The request never talks to the mail server; the job fails, is retried, and is visible."""
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=1, MAIL_USE_TLS=False)  # nothing listens
    response = client.post("/forgot-password", data={"email": "partner@example.com"}, follow_redirects=True)
    assert response.status_code == 200 and b"If an account exists for that address" in response.data
    drain(app)
    with app.app_context():
        record = db.session.scalar(
            select(JobRecord).where(JobRecord.func == "portal.auth.password.mail_password_reset")
        )
        assert record.attempts == 1 and record.status in (JobStatus.RETRYING, JobStatus.ENQUEUED)
        assert "MailError" in record.error or "refused" in record.error.lower()


def test_set_password_when_reset_token_expired_refused(app, client, auth, tenants, monkeypatch):
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == "customer@example.com"))
        token = tokens.make_token(user, tokens.RESET)
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) + 3601)
    response = client.post(f"/set-password/{token}", data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 400
    assert b"expired" in response.data
    assert auth.login("customer@example.com", NEW_PASSWORD).status_code == 401


def test_set_password_when_invite_token_six_days_old_still_works(app, client, tenants, monkeypatch):
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == "customer@example.com"))
        token = tokens.make_token(user, tokens.INVITE)
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(time.time()) + 6 * 86400)
    assert client.get(f"/set-password/{token}").status_code == 200


def test_set_password_when_token_tampered_refused(client, tenants):
    response = client.get("/set-password/not-a-real-token")
    assert response.status_code == 400
    assert b"not valid" in response.data


def test_set_password_when_too_short_error_next_to_field(app, client, tenants):
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == "customer@example.com"))
        token = tokens.make_token(user, tokens.RESET)
    response = client.post(f"/set-password/{token}", data={"password": "short", "confirm": "short"})
    assert response.status_code == 400
    assert b'id="password-error"' in response.data and b"at least 12" in response.data
