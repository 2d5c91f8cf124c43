"""Request-wide behaviour shared by every page: template helpers and the embedded worker start.

The embedded worker starts with the first request rather than in `create_app()`, so CLI commands
such as `flask db upgrade` never start a background thread against a database not yet migrated.
"""

from __future__ import annotations

from flask import Flask, current_app

from portal.models.users import Role


def init_app(app: Flask) -> None:
    from portal.money import format_money

    app.add_template_filter(format_money, "money")

    @app.context_processor
    def inject_roles():
        return {"Role": Role, "embedded_mode": not current_app.config["REDIS_URL"]}

    @app.before_request
    def start_embedded_worker():
        if not app.config["REDIS_URL"] and app.config["EMBEDDED_WORKER"] and not app.testing:
            from portal.jobs.workers import start_embedded

            start_embedded(app)

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "frame-ancestors 'none'",
        )
        return response


def attachment_header(filename: str) -> str:
    """Content-Disposition for a download: an ASCII fallback plus the exact UTF-8 name (RFC 6266)."""
    from urllib.parse import quote

    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


def send_stored(key: str, *, filename: str, mimetype: str, size: int, sha256: str | None = None):
    """A download response streaming a stored file in chunks.

    The generator needs no request context (it only reads the storage stream), so none is kept
    alive while the body is sent; the stream is closed when the body ends or the client goes away.
    """
    from flask import Response

    from portal.storage import get_storage

    stream = get_storage().open(key)

    def chunks():
        try:
            while chunk := stream.read(64 * 1024):
                yield chunk
        finally:
            stream.close()

    response = Response(chunks(), mimetype=mimetype, direct_passthrough=True)
    response.headers["Content-Disposition"] = attachment_header(filename)
    response.headers["Content-Length"] = str(size)
    if sha256:
        response.headers["X-Content-SHA256"] = sha256
    return response
