"""Admin console tests: a client logged in as the admin (helpers are in tests/factories.py)."""

import pytest


@pytest.fixture
def admin_client(client, auth, tenants):
    assert auth.login().status_code == 302
    return client
