"""Token authentication of the API: which tokens work, which answer 401, and what a use records."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from portal import accounts
from portal.auth import api_tokens
from portal.extensions import db
from portal.models import ApiToken, User
from portal.models.base import utcnow
from tests.api.conftest import api_client


def _token_row(app, secret) -> ApiToken:
    with app.app_context():
        row = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == api_tokens.token_hash(secret)))
        db.session.expunge(row)
        return row


def test_request_when_no_token_answers_401_problem(as_role):
    response = as_role(None).get("/customers")
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.json["status"] == 401 and response.json["errors"] == []
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_request_when_unknown_token_answers_401(app):
    response = api_client(app.test_client(), "tip_not-a-token").get("/customers")
    assert response.status_code == 401


def test_request_when_token_sent_with_another_scheme_answers_401(app, tokens):
    response = app.test_client().get(
        "/api/v1/customers", headers={"Authorization": f"Token {tokens['admin']}"}
    )
    assert response.status_code == 401


def test_request_when_valid_token_answers_200(as_role):
    response = as_role("admin").get("/customers")
    assert response.status_code == 200
    assert {c["code"] for c in response.json["items"]} == {"ACME", "GLOBEX"}


def test_request_when_session_cookie_but_no_token_answers_401(app, auth, tenants):
    client = app.test_client()
    assert (
        client.post(
            "/login", data={"email": "admin@example.com", "password": "correct horse battery staple"}
        ).status_code
        == 302
    )
    assert client.get("/admin/").status_code == 200  # the cookie works for pages
    response = client.get("/api/v1/customers")
    assert response.status_code == 401


def test_request_when_token_revoked_answers_401(app, tokens, as_role):
    row = _token_row(app, tokens["admin"])
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "admin@example.com"))
        assert api_tokens.revoke(db.session.get(ApiToken, row.id), by=user)
        db.session.commit()
    assert as_role("admin").get("/customers").status_code == 401


def test_request_when_token_expired_answers_401(app, tokens, as_role):
    row = _token_row(app, tokens["admin"])
    with app.app_context():
        db.session.execute(
            update(ApiToken).where(ApiToken.id == row.id).values(expires_at=utcnow() - timedelta(seconds=1))
        )
        db.session.commit()
    assert as_role("admin").get("/customers").status_code == 401


def test_request_when_user_deactivated_answers_401(app, tokens, as_role):
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "customer@example.com"))
        admin = db.session.scalar(select(User).where(User.email == "admin@example.com"))
        accounts.deactivate_user(user, reason="left the company", acting_user=admin)
        db.session.commit()
    assert as_role("customer").get("/customers").status_code == 401


def test_request_when_users_role_changed_answers_401(app, tokens, as_role):
    with app.app_context():
        db.session.execute(
            update(User).where(User.email == "customer2@example.com").values(customer_id=None, role="admin")
        )
        db.session.commit()
    assert as_role("customer2").get("/customers").status_code == 401


def test_request_when_token_used_records_last_used_time(app, tokens, as_role):
    assert _token_row(app, tokens["partner"]).last_used_at is None
    as_role("partner").get("/partners")
    assert _token_row(app, tokens["partner"]).last_used_at is not None


def test_token_when_created_is_stored_only_as_its_hash(app, tokens):
    with app.app_context():
        stored = db.session.scalars(select(ApiToken.token_hash)).all()
    assert tokens["admin"] not in stored
    assert api_tokens.token_hash(tokens["admin"]) in stored


def test_token_when_role_not_allowed_answers_403(as_role):
    response = as_role("partner").get("/schedules")
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"
