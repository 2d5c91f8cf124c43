"""Every API route x every role's token x each tenant's objects, against tests/security/expectations.py:
an allowed role gets `ok` for its own tenant's objects and 404 for another's; a role the route is not
for gets 403; no token gets 401. GETs in every cell, POST/PATCH only where refused, so nothing changes.
"""

from __future__ import annotations

import pytest

from tests.api.conftest import api_client
from tests.security.expectations import EXPECT
from tests.security.world import ROLES, changed_tables, fill, role_kind, snapshot


def expected(expect, role: str, tenant: str) -> int:
    kind, own = role_kind(role)
    if kind == "anonymous":
        return 401
    if kind not in expect.roles:
        return 403
    if expect.scoped and kind != "admin" and own != tenant:
        return 404
    return expect.ok


def api_rules(app):
    return [
        rule for rule in app.url_map.iter_rules() if rule.endpoint in EXPECT and EXPECT[rule.endpoint].api
    ]


@pytest.fixture(scope="module")
def matrix(world):
    before = snapshot(world.app)
    results = []
    for rule in api_rules(world.app):
        expect = EXPECT[rule.endpoint]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for role in ROLES:
                for tenant in ("A", "B") if rule.arguments else ("A",):
                    want = expected(expect, role, tenant)
                    if method != "GET" and want == expect.ok:
                        continue  # it would act: the feature tests cover it
                    token = world.tokens.get(role)
                    client = api_client(world.app.test_client(), token)
                    url = fill(rule.rule, world.ids[tenant])
                    response = client.open(method, url, json={})
                    results.append((f"{method} {url} ({rule.endpoint}) as {role}", want, response.status_code,
                                    response.mimetype))  # fmt: skip
                    response.close()
    return results, before, snapshot(world.app)


def test_api_matrix_every_cell_answers_as_declared(matrix):
    results, _, _ = matrix
    assert results
    wrong = [f"{cell}: expected {want}, got {got}" for cell, want, got, _ in results if want != got]
    assert not wrong, f"{len(wrong)} of {len(results)} cells differ:\n" + "\n".join(wrong)


def test_api_matrix_errors_are_problem_documents(matrix):
    results, _, _ = matrix
    not_problems = [
        cell for cell, _, got, mimetype in results if got >= 400 and mimetype != "application/problem+json"
    ]
    assert not not_problems


def test_api_matrix_covers_other_tenants_objects_and_no_token(matrix):
    results, _, _ = matrix
    assert any(want == 404 for _, want, _, _ in results)
    assert any(want == 401 for _, want, _, _ in results)


def test_api_matrix_changes_no_state(matrix):
    _, before, after = matrix
    # api_tokens.last_used_at is the only write a read may make (token bookkeeping, like a session's)
    assert [t for t in changed_tables(before, after) if t != "api_tokens"] == []
