"""Token authentication for the REST API: `Authorization: Bearer <token>` through Flask-Login.

Under /api/ the session cookie is ignored (the API blueprints are CSRF-exempt, so a cookie must never
authenticate them); the request loader below makes `current_user` the token's user, so the tenancy
helpers (`scoped`, `get_or_404`) and the domain functions work exactly as they do for the pages.
"""

from __future__ import annotations

from functools import wraps

from flask import g, request
from flask_login import current_user

from portal.api.problems import abort_problem, is_api_request
from portal.auth import api_tokens
from portal.extensions import db, login_manager
from portal.models.users import Role, User

WWW_AUTHENTICATE = {"WWW-Authenticate": 'Bearer realm="api"'}


def bearer_token() -> str | None:
    """The token of this request's `Authorization: Bearer ...` header, or None."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


@login_manager.request_loader
def load_user_from_token(req) -> User | None:
    """The user of a usable bearer token, for requests under /api/ only; notes when it was used."""
    if not is_api_request():
        return None
    row = api_tokens.lookup(bearer_token())
    if row is None:
        return None
    g.api_token = row
    if api_tokens.touch(row):
        db.session.commit()
    return row.user


def current_token():
    """The `ApiToken` this request authenticated with, or None."""
    return g.get("api_token") if current_user.is_authenticated else None


def token_required(view):
    """Refuse a request without a usable token with 401 (a problem, never a login redirect)."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_user.is_authenticated or current_token() is None:
            abort_problem(401, headers=WWW_AUTHENTICATE)
        return view(*args, **kwargs)

    return wrapped


def roles_required(*roles: str | Role):
    """`token_required`, and the token's user must have one of these roles (else 403), as the pages
    allow: e.g. `@roles_required("admin")`."""
    allowed = {Role(r) for r in roles}

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated or current_token() is None:
                abort_problem(401, headers=WWW_AUTHENTICATE)
            if current_user.role not in allowed:
                abort_problem(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def rate_limit_key() -> str:
    """Flask-Limiter's key for the API: the token's id, or the client's address without one."""
    token = current_token()
    return f"api-token:{token.id}" if token is not None else f"api-ip:{request.remote_addr}"
