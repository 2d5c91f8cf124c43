"""Server-side sessions: a replayed cookie after logout, revocation, lifetimes, the sessions page, headers."""

import re
from datetime import timedelta

from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, User, UserSession
from portal.models.base import utcnow
from tests.factories import PASSWORD

COOKIE = "session"


def _user(app, email):
    with app.app_context():
        return db.session.scalar(select(User).where(User.email == email))


def _open_sessions(app, email):
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        return db.session.scalars(
            select(UserSession).where(UserSession.user_id == user.id, UserSession.ended_at.is_(None))
        ).all()


def _events(app, action):
    with app.app_context():
        return db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()


def _shift_session(app, email, *, created=timedelta(0), last_seen=timedelta(0)):
    """Move the user's open session back in time (as if `created` / `last_seen` had passed)."""
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        for row in db.session.scalars(select(UserSession).where(UserSession.user_id == user.id)):
            row.created_at = row.created_at - created
            row.last_seen_at = row.last_seen_at - last_seen
        db.session.commit()


def _browser(app, email, **headers):
    """A separately logged-in browser. (The `client` fixture keeps its last request's context open,
    which a second client's request would share, so tests with several browsers use these only.)"""
    browser = app.test_client()
    browser.post("/login", data={"email": email, "password": PASSWORD}, headers=headers)
    return browser


def _csrf_token(page: bytes) -> str:
    return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page.decode()).group(1)


def test_logout_when_old_cookie_replayed_is_anonymous(app, client, auth, tenants):
    auth.login("customer@example.com")
    stolen = client.get_cookie(COOKIE).value
    assert client.get("/customer/").status_code == 200
    auth.logout()
    client.set_cookie(COOKIE, stolen)
    response = client.get("/customer/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_logout_when_old_cookie_and_csrf_token_replayed_post_changes_nothing(app, client, tenants):
    app.config["WTF_CSRF_ENABLED"] = True
    login_page = client.get("/login").data
    client.post(
        "/login",
        data={"email": "admin@example.com", "password": PASSWORD, "csrf_token": _csrf_token(login_page)},
    )
    partner = _user(app, "partner@example.com")
    token = _csrf_token(client.get(f"/admin/users/{partner.id}/deactivate").data)
    stolen = client.get_cookie(COOKIE).value
    client.post("/logout", data={"csrf_token": token})

    client.set_cookie(COOKIE, stolen)
    response = client.post(
        f"/admin/users/{partner.id}/deactivate",
        data={"reason": "replayed", "confirm": "y", "csrf_token": token},
    )
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert _user(app, "partner@example.com").active is True
    assert _events(app, "user.deactivated") == []


def test_logout_ends_session_row_and_records_event_with_session(app, auth, tenants):
    auth.login()
    [row] = _open_sessions(app, "admin@example.com")
    auth.logout()
    assert _open_sessions(app, "admin@example.com") == []
    with app.app_context():
        assert db.session.get(UserSession, row.id).end_reason == "logout"
    assert [e.details["session_id"] for e in _events(app, "auth.logout")] == [row.id]


def test_login_records_session_with_address_and_browser(app, client, tenants):
    client.post(
        "/login",
        data={"email": "admin@example.com", "password": PASSWORD},
        headers={"User-Agent": "Firefox/140.0 test"},
    )
    [row] = _open_sessions(app, "admin@example.com")
    assert row.ip == "127.0.0.1" and row.user_agent == "Firefox/140.0 test"
    assert len(row.token_hash) == 64


def test_password_change_when_other_session_open_ends_it_keeps_this_one(app, tenants):
    phone = _browser(app, "customer@example.com")
    laptop = _browser(app, "customer@example.com")
    new = "violet lantern over quiet harbour"
    response = laptop.post("/account/password", data={"current": PASSWORD, "password": new, "confirm": new})
    assert response.status_code == 302
    assert laptop.get("/customer/").status_code == 200
    assert phone.get("/customer/").status_code == 302
    assert len(_open_sessions(app, "customer@example.com")) == 1
    assert _events(app, "auth.password_changed")[0].details == {"sessions_ended": 1}


def test_password_change_when_current_password_wrong_refused(app, client, auth, tenants):
    auth.login("customer@example.com")
    response = client.post(
        "/account/password",
        data={
            "current": "not my password",
            "password": "violet lantern over quiet harbour",
            "confirm": "violet lantern over quiet harbour",
        },
    )
    assert response.status_code == 400
    assert b"This is not your current password." in response.data
    assert _user(app, "customer@example.com").check_password(PASSWORD)


def test_password_reset_link_when_used_ends_every_session(app, tenants):
    from portal.auth import tokens

    other = _browser(app, "partner@example.com")
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "partner@example.com"))
        token = tokens.make_token(user, tokens.RESET)
    new = "violet lantern over quiet harbour"
    response = app.test_client().post(f"/set-password/{token}", data={"password": new, "confirm": new})
    assert response.status_code == 302
    assert other.get("/partner/").status_code == 302
    assert _open_sessions(app, "partner@example.com") == []
    assert _events(app, "auth.password_set")[0].details["sessions_ended"] == 1


def test_deactivation_ends_sessions_at_once(app, tenants):
    victim = _browser(app, "partner@example.com")
    assert victim.get("/partner/").status_code == 200
    admin = _browser(app, "admin@example.com")
    partner = _user(app, "partner@example.com")
    admin.post(f"/admin/users/{partner.id}/deactivate", data={"reason": "left the company", "confirm": "y"})
    assert victim.get("/partner/").status_code == 302
    assert _open_sessions(app, "partner@example.com") == []
    with app.app_context():
        assert [r.end_reason for r in db.session.scalars(select(UserSession).order_by(UserSession.id))] == [
            "deactivated",
            None,
        ]


def test_admin_sign_out_everywhere_ends_every_session_of_user(app, tenants):
    phones = [_browser(app, "customer@example.com"), _browser(app, "customer@example.com")]
    admin = _browser(app, "admin@example.com")
    customer = _user(app, "customer@example.com")
    assert b"2 open sessions" in admin.get(f"/admin/users/{customer.id}").data
    response = admin.post(f"/admin/users/{customer.id}/sign-out-everywhere")
    assert response.status_code == 302
    assert [phone.get("/customer/").status_code for phone in phones] == [302, 302]
    assert _open_sessions(app, "customer@example.com") == []
    [event] = _events(app, "user.signed_out_everywhere")
    assert event.actor_label == "admin@example.com" and event.details["sessions_ended"] == 2
    assert (event.subject_type, event.subject_id) == ("User", str(customer.id))
    assert admin.get("/admin/").status_code == 200  # the admin's own session goes on


def test_admin_sign_out_everywhere_when_not_admin_refused(app, tenants):
    other = _browser(app, "customer2@example.com")
    attacker = _browser(app, "customer@example.com")
    victim = _user(app, "customer2@example.com")
    assert attacker.post(f"/admin/users/{victim.id}/sign-out-everywhere").status_code == 403
    assert other.get("/customer/").status_code == 200


def test_session_when_idle_too_long_ends_with_message(app, client, auth, tenants):
    auth.login()
    _shift_session(
        app, "admin@example.com", last_seen=timedelta(minutes=app.config["SESSION_IDLE_MINUTES"], seconds=5)
    )
    response = client.get("/admin/", follow_redirects=True)
    assert b"without activity" in response.data and b'name="password"' in response.data
    assert client.get("/admin/").status_code == 302
    assert [e.details["reason"] for e in _events(app, "auth.session_expired")] == ["idle"]


def test_session_when_used_within_idle_limit_goes_on(app, client, auth, tenants):
    auth.login()
    _shift_session(
        app, "admin@example.com", last_seen=timedelta(minutes=app.config["SESSION_IDLE_MINUTES"] - 1)
    )
    assert client.get("/admin/").status_code == 200
    [row] = _open_sessions(app, "admin@example.com")
    assert utcnow() - row.last_seen_at < timedelta(seconds=30)  # the request counted as activity


def test_session_when_older_than_absolute_lifetime_ends_though_active(app, client, auth, tenants):
    auth.login()
    _shift_session(
        app, "admin@example.com", created=timedelta(hours=app.config["SESSION_ABSOLUTE_HOURS"], minutes=1)
    )
    response = client.get("/admin/", follow_redirects=True)
    assert b"hours after you logged in" in response.data
    assert client.get("/admin/").status_code == 302
    assert [e.details["reason"] for e in _events(app, "auth.session_expired")] == ["expired"]


def test_session_last_seen_when_requests_within_a_minute_written_once(
    app, client, auth, tenants, monkeypatch
):
    import portal.auth

    auth.login()
    [row] = _open_sessions(app, "admin@example.com")
    start = row.last_seen_at
    monkeypatch.setattr(portal.auth, "utcnow", lambda: start + timedelta(seconds=30))
    client.get("/admin/")
    assert _open_sessions(app, "admin@example.com")[0].last_seen_at == start
    monkeypatch.setattr(portal.auth, "utcnow", lambda: start + timedelta(seconds=90))
    client.get("/admin/")
    assert _open_sessions(app, "admin@example.com")[0].last_seen_at == start + timedelta(seconds=90)


def test_sessions_page_lists_own_sessions_and_marks_this_one(app, tenants):
    _browser(app, "partner@example.com")  # another user's session: not listed
    _browser(app, "customer@example.com", **{"User-Agent": "PhoneBrowser/1"})
    laptop = _browser(app, "customer@example.com")
    page = laptop.get("/account/sessions")
    assert page.status_code == 200
    assert b"PhoneBrowser/1" in page.data and b"This session" in page.data
    assert page.data.count(b'<td class="actions">') == 2  # this one and the phone's, not the partner's


def test_sessions_page_linked_from_account_menu(client, auth, tenants):
    auth.login("partner@example.com")
    assert b'href="/account/sessions"' in client.get("/partner/").data


def test_sessions_page_when_other_session_ended_it_stops_working(app, tenants):
    phone = _browser(app, "customer@example.com")
    [phone_row] = _open_sessions(app, "customer@example.com")
    laptop = _browser(app, "customer@example.com")
    assert laptop.post(f"/account/sessions/{phone_row.id}/end").status_code == 302
    assert phone.get("/customer/").status_code == 302
    assert laptop.get("/customer/").status_code == 200
    [event] = _events(app, "auth.session_ended")
    assert event.subject_type == "User" and event.details["session_id"] == phone_row.id


def test_sessions_page_when_ending_another_users_session_answers_404(app, tenants):
    other = _browser(app, "customer2@example.com")
    [row] = _open_sessions(app, "customer2@example.com")
    attacker = _browser(app, "customer@example.com")
    assert attacker.post(f"/account/sessions/{row.id}/end").status_code == 404
    assert other.get("/customer/").status_code == 200


def test_sessions_page_end_all_others_keeps_this_one(app, tenants):
    others = [_browser(app, "partner@example.com"), _browser(app, "partner@example.com")]
    laptop = _browser(app, "partner@example.com")
    laptop.post("/account/sessions/end-others")
    assert [other.get("/partner/").status_code for other in others] == [302, 302]
    assert laptop.get("/partner/").status_code == 200
    assert len(_open_sessions(app, "partner@example.com")) == 1


def test_headers_when_production_include_hsts(app, client):
    app.config["PORTAL_ENV"] = "production"
    response = client.get("/login")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_headers_when_development_leave_out_hsts(app, client):
    app.config["PORTAL_ENV"] = "development"
    assert "Strict-Transport-Security" not in client.get("/login").headers


def test_headers_always_deny_camera_microphone_geolocation(client):
    policy = client.get("/login").headers["Permissions-Policy"]
    for feature in ("camera=()", "microphone=()", "geolocation=()", "payment=()"):
        assert feature in policy
