"""The "API tokens" account page: list, create (the secret shown once), revoke with confirmation."""

from __future__ import annotations

import re

from sqlalchemy import select

from portal.extensions import db
from portal.models import ApiToken, AuditEvent

SECRET = re.compile(rb'value="(tip_[A-Za-z0-9_\-]+)"')


def _events(app, action):
    with app.app_context():
        return db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()


def _create(client, name="Payroll script", days="90"):
    return client.post("/account/api-tokens", data={"name": name, "expires_in_days": days})


def test_tokens_page_when_signed_in_lists_none_and_offers_the_form(client, auth, tenants):
    auth.login("partner@example.com")
    response = client.get("/account/api-tokens")
    assert response.status_code == 200
    assert b"You have no API tokens yet." in response.data
    assert b'<label for="name">Token name</label>' in response.data


def test_tokens_page_when_anonymous_redirects_to_login(client):
    response = client.get("/account/api-tokens")
    assert response.status_code == 302 and "/login" in response.location


def test_create_token_when_valid_shows_secret_once(client, auth, tenants):
    auth.login("customer@example.com")
    response = _create(client)
    assert response.status_code == 201
    assert b"shown only this once" in response.data
    secret = SECRET.search(response.data).group(1)
    assert response.headers["Cache-Control"] == "no-store"
    again = client.get("/account/api-tokens")
    assert secret not in again.data
    assert b"Payroll script" in again.data and secret[:8] in again.data


def test_create_token_when_valid_secret_works_on_the_api(client, auth, tenants):
    auth.login("customer@example.com")
    secret = SECRET.search(_create(client).data).group(1).decode()
    response = client.get("/api/v1/customers", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200
    assert [c["code"] for c in response.json["items"]] == ["ACME"]


def test_create_token_when_valid_is_audited_without_the_secret(app, client, auth, tenants):
    auth.login("customer@example.com")
    secret = SECRET.search(_create(client).data).group(1).decode()
    (event,) = _events(app, "api_token.created")
    assert event.actor_label == "customer@example.com"
    assert event.details["name"] == "Payroll script"
    assert secret not in str(event.details)


def test_create_token_when_expiry_chosen_expires_then(app, client, auth, tenants):
    auth.login("admin@example.com")
    _create(client, days="30")
    with app.app_context():
        row = db.session.scalar(select(ApiToken))
        assert (row.expires_at - row.created_at).days == 30


def test_create_token_when_name_missing_answers_400_with_message(app, client, auth, tenants):
    auth.login("admin@example.com")
    response = _create(client, name="  ")
    assert response.status_code == 400
    assert b"Give the token a name." in response.data
    with app.app_context():
        assert db.session.scalar(select(ApiToken)) is None


def test_create_token_when_expiry_not_offered_answers_400(app, client, auth, tenants):
    auth.login("admin@example.com")
    assert _create(client, days="3650").status_code == 400
    with app.app_context():
        assert db.session.scalar(select(ApiToken)) is None


def test_revoke_token_when_asked_shows_confirmation_first(app, client, auth, tenants):
    auth.login("partner@example.com")
    _create(client)
    with app.app_context():
        token_id = db.session.scalar(select(ApiToken.id))
    response = client.get(f"/account/api-tokens/{token_id}/revoke")
    assert response.status_code == 200
    assert b"Revoke the token" in response.data
    with app.app_context():
        assert db.session.get(ApiToken, token_id).revoked_at is None


def test_revoke_token_when_confirmed_refuses_it_and_audits(app, client, auth, tenants):
    auth.login("partner@example.com")
    secret = SECRET.search(_create(client).data).group(1).decode()
    with app.app_context():
        token_id = db.session.scalar(select(ApiToken.id))
    response = client.post(f"/account/api-tokens/{token_id}/revoke", follow_redirects=True)
    assert b"revoked" in response.data
    assert [e.details["name"] for e in _events(app, "api_token.revoked")] == ["Payroll script"]
    api = client.get("/api/v1/partners", headers={"Authorization": f"Bearer {secret}"})
    assert api.status_code == 401


def test_revoke_token_when_another_users_answers_404(app, client, auth, tenants):
    auth.login("partner@example.com")
    _create(client)
    auth.logout()
    with app.app_context():
        token_id = db.session.scalar(select(ApiToken.id))
    auth.login("admin@example.com")
    assert client.get(f"/account/api-tokens/{token_id}/revoke").status_code == 404
    assert client.post(f"/account/api-tokens/{token_id}/revoke").status_code == 404
    with app.app_context():
        assert db.session.get(ApiToken, token_id).revoked_at is None


def test_account_menu_when_signed_in_links_the_tokens_page(client, auth, tenants):
    auth.login("customer@example.com")
    response = client.get("/account/sessions")
    assert b'href="/account/api-tokens"' in response.data
