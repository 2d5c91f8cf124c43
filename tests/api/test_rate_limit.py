"""The per-token rate limit: over API_RATE_LIMIT a token gets 429 with Retry-After; others carry on."""

from __future__ import annotations

from portal.extensions import limiter


def test_requests_when_over_the_limit_answer_429_with_retry_after(app, as_role):
    limiter.reset()
    app.config["API_RATE_LIMIT"] = "3 per minute"
    client = as_role("admin")
    statuses = [client.get("/customers").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = client.get("/customers")
    assert response.mimetype == "application/problem+json"
    assert response.json["status"] == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 61


def test_requests_when_one_token_limited_another_token_still_answered(app, as_role):
    limiter.reset()
    app.config["API_RATE_LIMIT"] = "2 per minute"
    admin = as_role("admin")
    for _ in range(3):
        admin.get("/customers")
    assert admin.get("/customers").status_code == 429
    assert as_role("customer").get("/customers").status_code == 200
