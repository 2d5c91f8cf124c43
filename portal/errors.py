"""Error pages: HTML for browsers, JSON for API clients and htmx-less scripts that ask for it."""

from __future__ import annotations

import json

from flask import Flask, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

MESSAGES = {
    400: "The request could not be understood.",
    403: "You do not have access to this page.",
    404: "There is nothing here. The page may have moved, or you may not have access to it.",
    405: "That action is not allowed here.",
    413: "The file is too large.",
    429: "Too many requests. Please wait a moment and try again.",
    500: "Something went wrong on our side. The error has been logged.",
}


def wants_json() -> bool:
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return (
        best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]
    )


def error_response(status: int, message: str | None = None):
    message = message or MESSAGES.get(status, "Error")
    if request.path.startswith("/api/"):
        from portal.api.problems import problem  # the API's errors are problems, whoever raises them

        return problem(status, detail=message)
    if wants_json():
        return jsonify(error=message, status=status), status
    response = make_response(render_template("errors/error.html", status=status, message=message), status)
    if request.headers.get("HX-Request") == "true" and (
        request.headers.get("HX-Boosted") != "true" or status >= 500
    ):
        # A section (not a whole page) asked, or the page will not be swapped: leave the page as it
        # is and show the message in the error banner (static/app.js listens for portal-error).
        response.headers["HX-Trigger"] = json.dumps({"portal-error": f"Error {status}: {message}"})
        response.headers["HX-Reswap"] = "none"
    return response


def init_app(app: Flask) -> None:
    from portal.api import problems  # the API answers its errors as application/problem+json

    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return error_response(
            400, f"The form has expired or was not sent from this site ({exc.description})."
        )

    @app.errorhandler(413)
    def too_large(exc):
        if problems.is_api_request():
            return problems.from_exception(exc)
        limit_mb = app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024)
        return error_response(413, f"The file is too large: the limit is {limit_mb} MB.")

    @app.errorhandler(HTTPException)
    def http_error(exc):
        if problems.is_api_request():
            return problems.from_exception(exc)
        return error_response(
            exc.code or 500, MESSAGES.get(exc.code) if exc.code in MESSAGES else exc.description
        )

    @app.errorhandler(500)
    def server_error(exc):
        if problems.is_api_request():
            return problems.problem(500)
        return error_response(500)
