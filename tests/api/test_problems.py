"""Every error under /api/ is an application/problem+json document; pages keep their HTML errors."""

from __future__ import annotations


def test_unknown_api_path_answers_404_problem(as_role):
    response = as_role("admin").get("/no-such-thing")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.json["instance"] == "/api/v1/no-such-thing"


def test_wrong_method_answers_405_problem_with_allow(as_role):
    response = as_role("admin").delete("/customers")
    assert response.status_code == 405
    assert response.mimetype == "application/problem+json"
    assert "GET" in response.headers["Allow"]


def test_invalid_query_answers_422_with_field_errors(as_role):
    response = as_role("admin").get("/customers?limit=lots")
    assert response.status_code == 422
    assert response.json["title"] == "Invalid request"
    assert response.json["errors"] == [{"field": "limit", "message": "Not a valid integer."}]


def test_page_error_outside_api_stays_html(app, tenants):
    response = app.test_client().get("/no-such-page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"


def test_openapi_document_when_fetched_describes_errors_as_problems(app):
    document = app.test_client().get("/api/v1/openapi.json").json
    default = document["components"]["responses"]["DEFAULT_ERROR"]
    assert list(default["content"]) == ["application/problem+json"]
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
