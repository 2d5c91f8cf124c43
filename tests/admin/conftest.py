"""Helpers shared by the admin console tests."""

import re

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import AuditEvent, User


def events(app, action):
    with app.app_context():
        return db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()


def user_by_email(app, email):
    with app.app_context():
        return db.session.scalar(select(User).where(User.email == email))


LINK_RE = re.compile(r"https?://[^\s\"<>]+/set-password/([A-Za-z0-9_.\-]+)")


def link_token(message_bytes: bytes) -> str:
    match = LINK_RE.search(message_bytes.decode("utf-8", "replace").replace("=\r\n", "").replace("=\n", ""))
    assert match, "no set-password link in the message"
    return match.group(1)


@pytest.fixture
def admin_client(client, auth, tenants):
    assert auth.login().status_code == 302
    return client
