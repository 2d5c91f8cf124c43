"""The REST API under /api/v1: flask-smorest blueprints, their OpenAPI document and docs page.

Each resource group is one module with its own `blp`; they share token auth (auth.py), problem
errors (problems.py), idempotent POSTs (idempotency.py), cursor pagination (pagination.py) and a
per-token rate limit. Views call the same domain functions as the pages do.
"""

from __future__ import annotations

import http

from flask import Blueprint as FlaskBlueprint
from flask import Flask, current_app, render_template
from flask_smorest import Api
from flask_smorest.utils import prepare_response

from portal.api.problems import PROBLEM_JSON
from portal.api.schemas import ProblemSchema

URL_PREFIX = "/api/v1"

# A plain blueprint for the human docs page (Swagger UI, vendored under static/vendor/).
docs_bp = FlaskBlueprint("api_docs_page", __name__)


@docs_bp.route(f"{URL_PREFIX}/docs")
def docs():
    """The API's reference, read from /api/v1/openapi.json by the vendored Swagger UI."""
    return render_template("api/docs.html")


class PortalApi(Api):
    """flask-smorest's Api with errors documented as problem+json and handled by portal/errors.py
    (flask-smorest's own handler would answer every HTTP error of the site, pages too, with JSON)."""

    ERROR_SCHEMA = ProblemSchema

    def _register_error_handlers(self):
        pass  # portal/errors.py sends errors under /api/ to portal.api.problems

    def _register_responses(self):
        for status in http.HTTPStatus:
            response = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_JSON)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "An error (RFC 9457 problem)", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_JSON)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, response, lazy=True)


def blueprints():
    """Every API module's blueprint, in the order the docs list them."""
    from portal.api import directory, intake, reports, schedules

    return [directory.blp, reports.blp, intake.blp, schedules.blp]


def _rate_limit() -> str:
    return current_app.config["API_RATE_LIMIT"]


_limited: set[str] = set()


def init_app(app: Flask) -> None:
    from portal.api.auth import rate_limit_key
    from portal.extensions import csrf, limiter

    app.config.setdefault("API_TITLE", "Tuition Invoice Portal API")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", URL_PREFIX)
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.config.setdefault(
        "API_SPEC_OPTIONS",
        {
            "info": {
                "description": 'Personal access tokens are made on the "API tokens" page of the portal. '
                "Send one as `Authorization: Bearer <token>`. Errors are `application/problem+json`."
            },
            "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearerAuth": []}],
        },
    )
    api = PortalApi(app)
    for blp in blueprints():
        csrf.exempt(blp)  # token auth only: a cookie never authenticates /api/ (portal/api/auth.py)
        if blp.name not in _limited:
            # One budget per token across the whole API (shared scope), read from API_RATE_LIMIT.
            limiter.shared_limit(_rate_limit, scope="api", key_func=rate_limit_key)(blp)
            _limited.add(blp.name)
        api.register_blueprint(blp, url_prefix=URL_PREFIX)
    app.register_blueprint(docs_bp)
    app.extensions["portal-api"] = api
