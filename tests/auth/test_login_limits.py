"""Login rate limits: per client address and per account, behind trusted proxies, and with Redis down."""

import logging
import socket

import pytest
from sqlalchemy import select

from portal import create_app
from portal.extensions import db, limiter
from portal.models import UserSession
from tests.backends import base_config
from tests.factories import PASSWORD


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


@pytest.fixture
def app_with(app, tmp_path):
    """Build another app on the same database as `app`, with some settings changed."""
    built = []

    def build(**settings):
        config = {
            **base_config(tmp_path),
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": app.config["REDIS_URL"],
            **settings,
        }
        other = create_app(config)
        built.append(other)
        return other

    yield build
    for other in built:
        with other.app_context():
            db.session.remove()
            db.engine.dispose()
    # The limiter is one object for every app of the process: leave no "storage is down" state,
    # and no counts in its in-memory fallback, to the tests after this one.
    limiter._storage_dead = False
    if limiter._fallback_storage is not None:
        limiter._fallback_storage.reset()


def _login(client, email="admin@example.com", password=PASSWORD, ip="127.0.0.1", **headers):
    return client.post(
        "/login",
        data={"email": email, "password": password},
        environ_base={"REMOTE_ADDR": ip},
        headers=headers,
    )


def test_login_when_rate_limit_storage_unreachable_works_and_logs_warning(app_with, tenants, caplog):
    down = app_with(RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{_closed_port()}/0")
    with caplog.at_level(logging.WARNING):
        response = _login(down.test_client())
    assert response.status_code == 302 and response.headers["Location"] == "/admin/"
    assert any(
        "falling back to in-memory" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
    )


def test_login_when_rate_limit_storage_unreachable_still_limits_in_memory(app_with, tenants):
    down = app_with(
        RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{_closed_port()}/0", LOGIN_RATE_LIMIT="2 per minute"
    )
    client = down.test_client()
    statuses = [_login(client, password="wrong password!").status_code for _ in range(3)]
    assert statuses == [401, 401, 429]


def test_login_when_account_failed_from_many_addresses_limited_per_account(app, client, tenants):
    app.config.update(LOGIN_RATE_LIMIT="100 per minute", LOGIN_ACCOUNT_RATE_LIMIT="3 per 15 minutes")
    for n in range(3):
        assert _login(client, password=f"guess number {n}", ip=f"10.0.0.{n + 1}").status_code == 401
    refused = _login(client, password=PASSWORD, ip="10.0.0.99")
    assert refused.status_code == 429
    assert b"Too many login attempts" in refused.data


def test_login_when_one_account_limited_other_accounts_still_log_in(app, client, tenants):
    app.config.update(LOGIN_RATE_LIMIT="100 per minute", LOGIN_ACCOUNT_RATE_LIMIT="2 per 15 minutes")
    for n in range(2):
        _login(client, "admin@example.com", password=f"wrong password {n}", ip=f"10.0.1.{n + 1}")
    assert _login(client, "admin@example.com", ip="10.0.1.9").status_code == 429
    assert _login(client, "Partner@Example.com", ip="10.0.1.9").status_code == 302


def test_login_when_account_logs_in_successfully_its_allowance_is_not_used(app, tenants):
    app.config.update(LOGIN_RATE_LIMIT="100 per minute", LOGIN_ACCOUNT_RATE_LIMIT="2 per 15 minutes")
    statuses = [_login(app.test_client(), ip=f"10.0.2.{n}").status_code for n in range(4)]
    assert statuses == [302, 302, 302, 302]


def test_login_when_email_differs_in_case_shares_account_limit(app, client, tenants):
    app.config.update(LOGIN_RATE_LIMIT="100 per minute", LOGIN_ACCOUNT_RATE_LIMIT="2 per 15 minutes")
    _login(client, "admin@example.com", password="wrong password 1", ip="10.0.3.1")
    _login(client, "ADMIN@example.com", password="wrong password 2", ip="10.0.3.2")
    assert _login(client, "Admin@Example.com", ip="10.0.3.3").status_code == 429


def _session_ip(app) -> str:
    with app.app_context():
        return db.session.scalar(select(UserSession.ip).order_by(UserSession.id.desc()))


def test_proxy_when_no_trusted_proxy_ignores_forwarded_for(app_with, tenants):
    direct = app_with(TRUSTED_PROXY_COUNT=0)
    _login(direct.test_client(), ip="10.9.9.9", **{"X-Forwarded-For": "203.0.113.7"})
    assert _session_ip(direct) == "10.9.9.9"


def test_proxy_when_one_trusted_proxy_uses_forwarded_for(app_with, tenants):
    proxied = app_with(TRUSTED_PROXY_COUNT=1)
    _login(proxied.test_client(), ip="10.9.9.9", **{"X-Forwarded-For": "198.51.100.1, 203.0.113.7"})
    assert _session_ip(proxied) == "203.0.113.7"  # the address our proxy saw, not what the client claims


def test_proxy_when_trusted_limits_each_client_address_apart(app_with, tenants):
    proxied = app_with(
        TRUSTED_PROXY_COUNT=1, LOGIN_RATE_LIMIT="2 per minute", LOGIN_ACCOUNT_RATE_LIMIT="100 per minute"
    )
    client = proxied.test_client()
    for _ in range(2):
        _login(client, password="wrong password!", ip="10.9.9.9", **{"X-Forwarded-For": "203.0.113.7"})
    assert _login(client, ip="10.9.9.9", **{"X-Forwarded-For": "203.0.113.7"}).status_code == 429
    assert _login(client, ip="10.9.9.9", **{"X-Forwarded-For": "203.0.113.8"}).status_code == 302
