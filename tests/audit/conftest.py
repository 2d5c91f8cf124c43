"""Audit tests: a CLI runner for `flask audit ...`."""

import pytest


@pytest.fixture
def audit_runner(app):
    return app.test_cli_runner()
