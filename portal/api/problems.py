"""Errors of the REST API as `application/problem+json` (RFC 9457), with a field-level `errors` list.

Every HTTP error under /api/ goes through `from_exception()` (portal/errors.py routes it here), so a
404, a 422 from request validation and a 429 from the rate limiter all have the same shape.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from flask import Response, abort, current_app, request
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

PROBLEM_JSON = "application/problem+json"

TITLES = {
    401: "Authentication required",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    422: "Invalid request",
    429: "Too many requests",
    500: "Server error",
}

DETAILS = {
    401: "Send a valid API token in the header: Authorization: Bearer <token>.",
    403: "Your account's role may not use this endpoint.",
    404: "There is nothing here, or it belongs to another tenant.",
    405: "This endpoint does not accept that method.",
    429: "This token has sent too many requests; wait for the time in Retry-After.",
    500: "Something went wrong on our side. The error has been logged.",
}


def is_api_request() -> bool:
    """True for a request under /api/ (answered with problems, authenticated by token only)."""
    return request.path.startswith("/api/")


def problem(
    status: int,
    title: str | None = None,
    detail: str | None = None,
    errors: list[dict] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """An `application/problem+json` response: type, title, status, detail, instance, errors."""
    body = {
        "type": "about:blank",
        "title": title or TITLES.get(status) or HTTP_STATUS_CODES.get(status, "Error"),
        "status": status,
        "detail": detail or DETAILS.get(status) or HTTP_STATUS_CODES.get(status, ""),
        "instance": request.path,
        "errors": errors or [],
    }
    response = current_app.response_class(
        json.dumps(body, ensure_ascii=False) + "\n", status=status, mimetype=PROBLEM_JSON
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def abort_problem(status: int, title: str | None = None, detail: str | None = None,
                  errors: list[dict] | None = None, headers: Mapping[str, str] | None = None):  # fmt: skip
    """Stop the request with `problem(...)` (raises)."""
    abort(problem(status, title, detail, errors, headers))


def field_errors(messages, prefix: str = "") -> list[dict]:
    """Flatten marshmallow/webargs messages ({"json": {"name": ["..."]}}) to [{"field", "message"}].

    The location (json, query, form, files, headers) is dropped; nested fields and list items are
    joined with dots ("items.3.amount").
    """
    if isinstance(messages, Mapping):
        out = []
        for key, value in messages.items():
            if not prefix and key in {"json", "query", "form", "files", "headers", "path", "querystring"}:
                out += field_errors(value, "")
            else:
                out += field_errors(value, f"{prefix}.{key}" if prefix else str(key))
        return out
    if isinstance(messages, list | tuple) and messages and all(isinstance(m, str) for m in messages):
        return [{"field": prefix or None, "message": m} for m in messages]
    if isinstance(messages, list | tuple):
        return [e for m in messages for e in field_errors(m, prefix)]
    return [{"field": prefix or None, "message": str(messages)}]


def from_exception(exc: HTTPException) -> Response:
    """The problem for an HTTP error raised anywhere under /api/ (404, 405, 413, 422, 429 ...)."""
    status = exc.code or 500
    if exc.response is not None and exc.response.mimetype == PROBLEM_JSON:
        return exc.response  # already a problem (abort_problem)
    data = getattr(exc, "data", None) or {}
    errors = field_errors(data["messages"]) if "messages" in data else []
    detail = data.get("message") or DETAILS.get(status) or exc.description
    if status == 422 and errors and "message" not in data:
        detail = "Some fields are not valid: see errors."
    headers = dict(exc.get_headers()) if status in (405, 429) else {}
    headers.pop("Content-Type", None)
    if status == 429:
        headers["Retry-After"] = str(retry_after_seconds())
    return problem(status, detail=detail, errors=errors, headers=headers)


def retry_after_seconds() -> int:
    """Seconds until the breached rate limit's window frees a request (at least 1)."""
    import time

    from portal.extensions import limiter

    current = limiter.current_limit
    if current is None:
        return 60
    return max(1, int(current.reset_at - time.time()) + 1)
