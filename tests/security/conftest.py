"""One world per backend for the whole security package: building it (two tenants on each side,
an invoice, a dispute, a delivery, uploads) takes a few seconds, the matrix thousands of requests."""

from __future__ import annotations

import pytest

from tests.security.world import build_world, make_app, teardown


@pytest.fixture(scope="package", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory):
    app = make_app(request.param, tmp_path_factory.mktemp(f"security-{request.param}"), request)
    built = build_world(app, request.param)
    yield built
    teardown(built)
