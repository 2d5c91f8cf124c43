"""The security matrix, generated from the app's URL map: every route x every role x each tenant's
objects, against the answers declared once in tests/security/expectations.py.

GETs are sent in every cell; a POST only where it must be refused (anonymous, wrong role, another
tenant's object), so the matrix itself changes nothing. The whole run happens once per backend;
each test below asserts one thing about it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from werkzeug.routing import IntegerConverter

from portal.web.inputs import IdConverter
from tests.security.expectations import EXPECT, LOGIN, UNCHECKED, Expect
from tests.security.world import ROLES, World, changed_tables, fill, role_kind, snapshot


@dataclass(frozen=True)
class Cell:
    endpoint: str
    method: str
    role: str
    tenant: str
    url: str
    expected: int | str
    got: int | str

    def __str__(self) -> str:
        return (
            f"{self.method} {self.url} ({self.endpoint}) as {self.role}, "
            f"tenant {self.tenant}'s objects: expected {self.expected}, got {self.got}"
        )


def expected_answer(expect: Expect, role: str, tenant: str) -> int | str:
    kind, own = role_kind(role)
    if expect.api:
        return 401  # a session cookie never authenticates the API: every role is anonymous there
    if kind == "anonymous":
        return expect.anonymous
    if expect.public:
        return expect.signed_in or expect.ok
    if kind not in expect.roles:
        return 403
    if expect.scoped and kind != "admin" and own != tenant:
        return 404
    return expect.ok


def answer(response) -> int | str:
    if response.status_code in (301, 302, 303) and (response.location or "").split("?")[0].endswith("/login"):
        return LOGIN
    return response.status_code


def routes(app):
    return [rule for rule in app.url_map.iter_rules() if rule.endpoint not in UNCHECKED]


def cells(world: World):
    """(endpoint, method, role, tenant, url, expected) for every cell the matrix sends."""
    for rule in routes(world.app):
        expect = EXPECT.get(rule.endpoint)
        if expect is None:
            continue  # test_every_route_has_a_declared_expectation names it
        for method in ("GET", "POST"):
            if method not in rule.methods:
                continue
            for role in ROLES:
                # Without ids in the URL, or for a refused role, one tenant's URL says all.
                tenants = ("A", "B") if rule.arguments else ("A",)
                for tenant in tenants:
                    expected = expected_answer(expect, role, tenant)
                    allowed = expected == expect.ok and role != "anonymous" and not expect.api
                    if method == "POST" and (allowed or expect.public):
                        continue  # it would act: the CSRF sweep and the feature tests cover those
                    if tenant == "B" and expected in (403, LOGIN) and role != "admin":
                        continue
                    url = fill(rule.rule, world.ids[tenant])
                    yield rule.endpoint, method, role, tenant, url, expected


@pytest.fixture(scope="module")
def matrix(world):
    """Send every cell once; the database as it was before and after."""
    before = snapshot(world.app)
    results = []
    for endpoint, method, role, tenant, url, expected in cells(world):
        client = world.client(role)
        response = client.get(url) if method == "GET" else client.post(url, data={})
        results.append(Cell(endpoint, method, role, tenant, url, expected, answer(response)))
        response.close()
    return results, before, snapshot(world.app)


def test_every_route_has_a_declared_expectation(world):
    missing = sorted({rule.endpoint for rule in routes(world.app)} - EXPECT.keys())
    assert not missing, (
        "Routes without a declared expectation (add them to tests/security/expectations.py): "
        + ", ".join(missing)
    )


def test_declared_expectations_name_existing_routes(world):
    stale = sorted(EXPECT.keys() - {rule.endpoint for rule in world.app.url_map.iter_rules()})
    assert not stale, "Expectations for routes that no longer exist: " + ", ".join(stale)


def test_no_route_takes_a_plain_int_id(world):
    plain = sorted(
        f"{rule.rule} ({rule.endpoint}): <{name}>"
        for rule in world.app.url_map.iter_rules()
        for name, converter in rule._converters.items()
        if isinstance(converter, IntegerConverter) and not isinstance(converter, IdConverter)
    )
    assert not plain, "Use <id:...> (portal/web/inputs.py) for ids in URLs: " + "; ".join(plain)


def test_matrix_every_cell_answers_as_declared(matrix):
    results, _, _ = matrix
    wrong = [str(cell) for cell in results if cell.got != cell.expected]
    assert not wrong, f"{len(wrong)} of {len(results)} cells differ:\n" + "\n".join(wrong)


def test_matrix_covers_every_role_and_another_tenants_objects(matrix):
    results, _, _ = matrix
    assert {cell.role for cell in results} == set(ROLES)
    # (a route whose declared answer is 404 for everyone, like revoking nobody's API token, is not one)
    cross_tenant = [c for c in results if c.expected == 404 and EXPECT[c.endpoint].ok != 404]
    assert {c.role for c in cross_tenant} == {"partner_a", "partner_b", "customer_a", "customer_b"}


def test_matrix_gets_and_refused_posts_change_no_state(matrix):
    _, before, after = matrix
    assert changed_tables(before, after) == []
