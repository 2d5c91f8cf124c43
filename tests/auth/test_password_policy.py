"""New passwords: common, breached-list, repetitive and own-email passwords are refused with the reason."""

import pytest
from sqlalchemy import select

from portal import accounts
from portal.auth import tokens
from portal.auth.password_policy import COMMON, COMMON_PLUS, OWN_NAME, REPEATED, password_problem
from portal.extensions import db
from portal.models import User
from tests.factories import PASSWORD


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("qwertyuiop12", COMMON),
        ("1qaz2wsx3edc", COMMON),
        ("QwertyUiop12", COMMON),
        ("password2024!", COMMON_PLUS),
        ("iloveyou123456", COMMON_PLUS),
        ("abcabcabcabc", REPEATED),
        ("zzzzzzzzzzzzzz", REPEATED),
        ("jane.doe-spring-2025", OWN_NAME),
        ("short", "Use at least 12 characters."),
    ],
)
def test_password_problem_when_weak_names_reason(password, reason):
    assert password_problem(password, email="jane.doe@acme.example") == reason


@pytest.mark.parametrize(
    "password", [PASSWORD, "violet lantern over quiet harbour", "Tr0ub4dor&3-mossy-gate"]
)
def test_password_problem_when_strong_accepts(password):
    assert password_problem(password, email="jane.doe@acme.example") is None


def test_create_user_when_common_password_refused_with_reason(app, tenants):
    with app.app_context(), pytest.raises(accounts.ValidationError) as refused:
        accounts.create_user(email="new.admin@example.com", password="qwertyuiop123", role="admin")
    assert refused.value.field == "password" and "common passwords" in refused.value.message


def test_cli_create_user_when_common_password_fails_with_reason(app, runner, tenants):
    result = runner.invoke(
        args=["create-user", "--email", "ops@example.com", "--role", "admin", "--password", "password1234"]
    )
    assert result.exit_code != 0
    assert "common password" in result.output
    with app.app_context():
        assert db.session.scalar(select(User).where(User.email == "ops@example.com")) is None


def test_set_password_page_when_common_password_refused_and_link_still_works(app, client, tenants):
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "partner@example.com"))
        token = tokens.make_token(user, tokens.RESET)
    refused = client.post(
        f"/set-password/{token}", data={"password": "baseball123456", "confirm": "baseball123456"}
    )
    assert refused.status_code == 400
    assert COMMON_PLUS.encode() in refused.data
    good = "violet lantern over quiet harbour"
    assert client.post(f"/set-password/{token}", data={"password": good, "confirm": good}).status_code == 302


def test_change_password_page_when_common_password_refused(app, client, auth, tenants):
    auth.login("customer@example.com")
    response = client.post(
        "/account/password", data={"current": PASSWORD, "password": "1qaz2wsx3edc", "confirm": "1qaz2wsx3edc"}
    )
    assert response.status_code == 400
    assert COMMON.encode() in response.data
    with app.app_context():
        assert db.session.scalar(select(User).where(User.email == "customer@example.com")).check_password(
            PASSWORD
        )
