"""Login, logout, wrong passwords, rate limits, sessions and CSRF."""

import re

from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, User
from tests.factories import PASSWORD


def _events(app, action):
    with app.app_context():
        return db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()


def test_login_page_when_anonymous_shows_form(client):
    response = client.get("/login")
    assert response.status_code == 200
    assert b'name="email"' in response.data and b'<label for="password"' in response.data


def test_login_when_correct_redirects_to_role_landing(client, auth, tenants):
    response = auth.login("partner@example.com")
    assert response.status_code == 302
    assert response.headers["Location"] == "/partner/"


def test_login_when_correct_records_audit_event_and_last_login(app, auth, tenants):
    auth.login("customer@example.com")
    events = _events(app, "auth.login")
    assert [e.actor_label for e in events] == ["customer@example.com"]
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "customer@example.com"))
        assert user.last_login_at is not None


def test_login_when_wrong_password_refused_with_message(client, auth, tenants):
    response = auth.login("admin@example.com", "not the password")
    assert response.status_code == 401
    assert b"Wrong email or password." in response.data
    assert client.get("/admin/").status_code == 302  # still anonymous


def test_login_when_wrong_password_records_failed_login(app, auth, tenants):
    auth.login("admin@example.com", "not the password")
    events = _events(app, "auth.login_failed")
    assert len(events) == 1
    assert events[0].details == {"email": "admin@example.com", "reason": "wrong password"}


def test_login_when_unknown_email_gets_same_message(client, auth, tenants):
    response = auth.login("nobody@example.com", "whatever it is")
    assert response.status_code == 401
    assert b"Wrong email or password." in response.data


def test_login_when_email_differs_in_case_succeeds(auth, tenants):
    assert auth.login("Admin@Example.COM").headers["Location"] == "/admin/"


def test_login_when_user_deactivated_refused(app, auth, tenants):
    with app.app_context():
        db.session.scalar(select(User).where(User.email == "admin@example.com")).active = False
        db.session.commit()
    assert auth.login().status_code == 401


def test_login_when_too_many_attempts_answers_429_with_message(client, auth, tenants):
    for _ in range(5):
        auth.login("admin@example.com", "wrong password!")
    response = auth.login("admin@example.com", PASSWORD)
    assert response.status_code == 429
    assert b"Too many login attempts" in response.data


def test_login_when_next_is_external_ignores_it(client, tenants):
    response = client.post(
        "/login?next=https://evil.example/", data={"email": "admin@example.com", "password": PASSWORD}
    )
    assert response.headers["Location"] == "/admin/"


def test_login_when_next_is_local_follows_it(client, tenants):
    response = client.post("/login?next=/admin/", data={"email": "admin@example.com", "password": PASSWORD})
    assert response.headers["Location"] == "/admin/"


def test_logout_ends_session_and_records_event(app, client, auth, tenants):
    auth.login()
    response = auth.logout()
    assert response.headers["Location"] == "/login"
    assert client.get("/admin/").status_code == 302
    assert len(_events(app, "auth.logout")) == 1


def test_logout_when_get_is_not_allowed(client, auth, tenants):
    auth.login()
    assert client.get("/logout").status_code == 405
    assert client.get("/admin/").status_code == 200


def test_session_when_idle_too_long_expires(app, client, auth, tenants):
    from datetime import timedelta

    from portal.models import UserSession

    auth.login()
    with app.app_context():
        row = db.session.scalar(select(UserSession))
        row.last_seen_at -= timedelta(minutes=app.config["SESSION_IDLE_MINUTES"], seconds=5)
        db.session.commit()
    response = client.get("/admin/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert client.get("/admin/").status_code == 302


def test_session_when_password_changed_elsewhere_is_ended(app, client, auth, tenants):
    auth.login()
    with app.app_context():
        db.session.scalar(select(User).where(User.email == "admin@example.com")).set_password(
            "a new password 123"
        )
        db.session.commit()
    assert client.get("/admin/").status_code == 302


def test_session_cookie_is_httponly_and_samesite_lax(client, auth, tenants):
    response = auth.login()
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_login_starts_new_session(client, auth, tenants):
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
    auth.login()
    with client.session_transaction() as session:
        assert "planted" not in session


def test_password_is_stored_as_argon2_hash(app, tenants):
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "admin@example.com"))
        assert user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash


def test_post_without_csrf_token_is_rejected(app, client, tenants):
    app.config["WTF_CSRF_ENABLED"] = True
    response = client.post("/login", data={"email": "admin@example.com", "password": PASSWORD})
    assert response.status_code == 400
    assert b"The form has expired or was not sent from this site" in response.data


def test_post_with_csrf_token_from_form_is_accepted(app, client, tenants):
    app.config["WTF_CSRF_ENABLED"] = True
    page = client.get("/login").data.decode()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    response = client.post(
        "/login", data={"email": "admin@example.com", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302


def test_htmx_pages_carry_csrf_header_for_every_request(client, auth, tenants):
    auth.login()
    page = client.get("/admin/").data.decode()
    assert re.search(r"<body[^>]*hx-headers='\{\"X-CSRFToken\": \"[^\"]+\"\}'", page)
