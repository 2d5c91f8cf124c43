"""Every state-changing route refuses a request without a CSRF token, sent by the very user who may
use it on their own tenant's objects (the request that would otherwise act), and nothing changes."""

from __future__ import annotations

import pytest

from tests.security.expectations import EXPECT, UNCHECKED
from tests.security.world import changed_tables, fill, snapshot

# Which signed-in role sends each route's POST: one who may use it.
SENDER = {"admin": "admin", "partner": "partner_a", "customer": "customer_a"}


def _sender(endpoint: str) -> str:
    expect = EXPECT[endpoint]
    if expect.public:
        return "anonymous"
    return next(SENDER[kind] for kind in ("customer", "partner", "admin") if kind in expect.roles)


@pytest.fixture(scope="module")
def csrf_on(world):
    world.app.config["WTF_CSRF_ENABLED"] = True
    yield world
    world.app.config["WTF_CSRF_ENABLED"] = False


@pytest.fixture(scope="module")
def post_answers(csrf_on):
    """Each POST route sent once without a token, with the database before and after."""
    world = csrf_on
    before = snapshot(world.app)
    answers = {}
    for rule in world.app.url_map.iter_rules():
        if "POST" not in rule.methods or rule.endpoint in UNCHECKED or rule.endpoint not in EXPECT:
            continue
        if EXPECT[rule.endpoint].api:
            continue  # CSRF-exempt: only a bearer token authenticates it (tests/api/test_auth.py)
        response = world.client(_sender(rule.endpoint)).post(fill(rule.rule, world.ids["A"]), data={"x": "1"})
        answers[f"{rule.endpoint} ({rule.rule})"] = (response.status_code, response.get_data(as_text=True))
    return answers, before, snapshot(world.app)


def test_post_without_csrf_token_when_csrf_enabled_refused_with_400(post_answers):
    answers, _, _ = post_answers
    assert len(answers) > 40
    accepted = {route: status for route, (status, _) in answers.items() if status != 400}
    assert not accepted, f"POSTs accepted without a CSRF token: {accepted}"


def test_post_without_csrf_token_when_csrf_enabled_says_the_form_expired(post_answers):
    answers, _, _ = post_answers
    unexplained = [route for route, (_, body) in answers.items() if "The form has expired" not in body]
    assert not unexplained


def test_post_without_csrf_token_when_csrf_enabled_changes_nothing(post_answers):
    _, before, after = post_answers
    assert changed_tables(before, after) == []
