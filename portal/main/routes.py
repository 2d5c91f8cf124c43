"""Home redirect and `/healthz`."""

from __future__ import annotations

from flask import current_app, jsonify, redirect, send_file, url_for
from flask_login import current_user
from sqlalchemy import text

from portal import jobs
from portal.auth import home_url_for
from portal.core.storage import get_storage
from portal.extensions import csrf, db
from portal.main import bp


@bp.route("/")
def index():
    """Send a logged-in user to their role's landing page, anyone else to the login page."""
    if current_user.is_authenticated:
        return redirect(home_url_for(current_user))
    return redirect(url_for("auth.login"))


def _check(fn) -> dict:
    try:
        detail = fn()
    except Exception as exc:  # the health check reports any failure rather than raising it
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, **(detail or {})}


def _database():
    db.session.execute(text("SELECT 1"))
    return {"backend": db.engine.dialect.name}


def _queue():
    jobs.get_connection().ping()
    mode = "redis" if current_app.config["REDIS_URL"] else "embedded"
    detail = {"mode": mode, "queued": {name: len(jobs.get_queue(name)) for name in jobs.QUEUES}}
    runner = current_app.extensions.get("embedded_worker")
    if mode == "embedded" and runner is not None:
        detail["embedded_worker_alive"] = runner.alive
    return detail


def _storage():
    storage = get_storage()
    storage.check()
    return {"backend": storage.url.split(":", 1)[0]}


@bp.route("/brand/logo")
def brand_logo():
    """The logo of the COMPANY_LOGO setting (an SVG or PNG file), or our own mark when it is unset."""
    path = current_app.config.get("COMPANY_LOGO")
    if not path:
        return redirect(url_for("static", filename="brand.svg"))
    response = send_file(path, max_age=3600)
    # An SVG from settings is shown as an image only: no script in it may run on our origin.
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response


@bp.route("/favicon.ico")
def favicon():
    """Our icon for what browsers ask /favicon.ico for: documents without a <link rel=icon>, such as
    the API's JSON (/api/v1/openapi.json, linked from its docs page)."""
    return redirect(url_for("static", filename="favicon.svg"), 301)


@bp.route("/healthz")
@csrf.exempt
def healthz():
    """Report database, queue and storage status as JSON: 200 when all are ok, else 503."""
    checks = {"database": _check(_database), "queue": _check(_queue), "storage": _check(_storage)}
    db.session.rollback()
    ok = all(c["ok"] for c in checks.values())
    return jsonify(status="ok" if ok else "degraded", checks=checks), 200 if ok else 503
