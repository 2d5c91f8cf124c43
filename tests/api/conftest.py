"""Fixtures for the REST API tests: the security suite's world (two tenants on each side, an
invoice, a dispute, uploads) with an API token per role, and helpers that send a token.

- `world`: built once per backend for the package; read-mostly (a test that changes state changes
  objects no other test counts on, or uses `fresh_world`).
- `fresh_world`: the same world built for one test, for tests that change shared state.
- `token_for(role_or_user, **kwargs)`: a new token's secret for a role name of the world
  ("admin", "partner_a", "partner_b", "customer_a", "customer_b") or a `User`.
- `api(client_or_none, token)`: a client whose requests carry `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.auth import api_tokens
from portal.extensions import db
from portal.models import User
from tests.security.world import EMAILS, ROLES, build_world, make_app, teardown

API = "/api/v1"
API_ROLES = tuple(role for role in ROLES if role != "anonymous")


class ApiClient:
    """A test client that sends `Authorization: Bearer <token>` (none if token is None) with every
    request; `path` may leave out the /api/v1 prefix."""

    def __init__(self, client, token: str | None):
        self.client = client
        self.token = token

    def open(self, method: str, path: str, **kwargs):
        headers = dict(kwargs.pop("headers", None) or {})
        if self.token is not None:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        url = path if path.startswith(API) else f"{API}{path}"
        return self.client.open(url, method=method, headers=headers, **kwargs)

    def get(self, path, **kwargs):
        return self.open("GET", path, **kwargs)

    def post(self, path, **kwargs):
        return self.open("POST", path, **kwargs)

    def patch(self, path, **kwargs):
        return self.open("PATCH", path, **kwargs)

    def put(self, path, **kwargs):
        return self.open("PUT", path, **kwargs)

    def delete(self, path, **kwargs):
        return self.open("DELETE", path, **kwargs)


def api_client(client, token: str | None) -> ApiClient:
    return ApiClient(client, token)


def make_token(app, role_or_user, *, name: str = "test token", expires_in_days: int = 90) -> str:
    """A new token's secret for a world role name or a User (committed)."""
    with app.app_context():
        if isinstance(role_or_user, User):
            user = db.session.get(User, role_or_user.id)
        else:
            user = db.session.scalar(select(User).where(User.email == EMAILS[role_or_user]))
        _, secret = api_tokens.create(user, name=name, expires_in_days=expires_in_days)
        db.session.commit()
        return secret


def _with_tokens(world):
    # Thousands of requests per test run: the per-token limit has its own tests (a small limit).
    world.app.config["API_RATE_LIMIT"] = "100000 per minute"
    world.tokens = {role: make_token(world.app, role) for role in API_ROLES}
    return world


@pytest.fixture(scope="package", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory):
    """The security world for the API tests, with `world.tokens[role]` (a secret per role)."""
    app = make_app(request.param, tmp_path_factory.mktemp(f"api-{request.param}"), request)
    built = _with_tokens(build_world(app, request.param))
    yield built
    teardown(built)


@pytest.fixture
def fresh_world(backend, tmp_path, request):
    """A world of its own for one test (slower: built per test), for tests that change shared state."""
    app = make_app(backend, tmp_path, request)
    built = _with_tokens(build_world(app, backend))
    yield built
    teardown(built)


@pytest.fixture
def token_for(request):
    """`token_for(role_or_user, **kwargs)`: a new token for the world of this test (fresh or shared)."""

    def make(role_or_user, **kwargs):
        target = request.getfixturevalue("fresh_world" if "fresh_world" in request.fixturenames else "world")
        return make_token(target.app, role_or_user, **kwargs)

    return make


@pytest.fixture
def api(request):
    """`api(client, token)`: an ApiClient; `client` None means a new cookie-less client of the world."""

    def make(client, token):
        if client is None:
            target = request.getfixturevalue(
                "fresh_world" if "fresh_world" in request.fixturenames else "world"
            )
            client = target.app.test_client()
        return api_client(client, token)

    return make


# --- the cheaper per-test world: tests/conftest.py's `app` + `tenants`, with a token per user -------

TENANT_EMAILS = {
    "admin": "admin@example.com",
    "partner": "partner@example.com",
    "partner2": "partner2@example.com",
    "customer": "customer@example.com",
    "customer2": "customer2@example.com",
}


def token_for_email(app, email: str, **kwargs) -> str:
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
    return make_token(app, user, **kwargs)


@pytest.fixture
def tokens(app, tenants):
    """A token per user of the `tenants` fixture: admin, partner, partner2, customer, customer2."""
    app.config["API_RATE_LIMIT"] = "100000 per minute"
    return {role: token_for_email(app, email) for role, email in TENANT_EMAILS.items()}


@pytest.fixture
def as_role(app, tokens):
    """`as_role("admin")`: an ApiClient of a fresh test client with that user's token (None: no token)."""

    def make(role: str | None):
        return api_client(app.test_client(), tokens[role] if role else None)

    return make
