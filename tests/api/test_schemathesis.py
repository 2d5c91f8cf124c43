"""Schemathesis over the app's own OpenAPI document: every operation, a bounded number of generated
requests each (derandomized, so a run is repeatable), sent with an admin token; no answer may be a
5xx, and every answer must match its documented status, content type, headers and schema.

Runs on a world of its own (`fresh_world`): the generated POSTs and PATCHes change state.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = 10


def _operations(app):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations, "the OpenAPI document lists no operation"
    return operations


def _run(operation, headers, path_parameters=None):
    strategy = operation.as_strategy(path_parameters=path_parameters or None)

    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def check(case):
        case.call_and_validate(headers=headers, checks=CHECKS)

    check()


def test_every_operation_when_fuzzed_as_admin_answers_per_its_schema(fresh_world):
    headers = {"Authorization": f"Bearer {fresh_world.tokens['admin']}"}
    for operation in _operations(fresh_world.app):
        _run(operation, headers)


def test_every_operation_when_naming_real_objects_answers_per_its_schema(fresh_world):
    """The same, with each path parameter set to a real object of tenant A where the world has one,
    so the success answers (not only the 404s) are checked against their schemas."""
    headers = {"Authorization": f"Bearer {fresh_world.tokens['admin']}"}
    known = fresh_world.ids["A"]
    for operation in _operations(fresh_world.app):
        names = [p.name for p in operation.path_parameters]
        fixed = {name: known[name] for name in names if name in known}
        _run(operation, headers, fixed)
