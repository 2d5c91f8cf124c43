"""Request-wide behaviour shared by every page: template helpers and the embedded worker start.

The embedded worker starts with the first request rather than in `create_app()`, so CLI commands
such as `flask db upgrade` never start a background thread against a database not yet migrated.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from flask import Flask, Response, current_app, has_request_context, request, url_for

from portal.core.storage import get_storage
from portal.jobs.workers import start_embedded
from portal.models.users import Role
from portal.web import locale

# How htmx treats answers (htmx 2's responseHandling), one rule for every page:
# - a 4xx answer carries the form with its error messages (or an error message): swap it into the
#   element that asked, exactly like a 2xx, so the user sees why;
# - a 5xx answer is not swapped (it would replace a form the user filled in with an error page):
#   app.js shows a visible, dismissible banner instead;
# - a link to a file (`<a download>`) is never boosted, so a download saves a file instead of
#   swapping the file's bytes into the page.
HTMX_CONFIG = {
    "responseHandling": [
        {"code": "204", "swap": False},
        {"code": "[23]..", "swap": True},
        {"code": "4..", "swap": True, "error": False},
        {"code": "5..", "swap": False, "error": True},
        {"code": "...", "swap": False, "error": True},
    ],
    "disableSelector": "[hx-disable], [data-hx-disable], a[download]",
    "scrollIntoViewOnBoost": False,
}


PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), "
    "payment=(), usb=()"
)


@dataclass(frozen=True)
class NavLink:
    label: str
    endpoint: str
    prefixes: tuple[str, ...]

    @property
    def url(self) -> str:
        return url_for(self.endpoint)

    @property
    def current(self) -> bool:
        endpoint = request.endpoint or ""
        return any(endpoint == p or endpoint.startswith(p + "_") for p in self.prefixes)


# The navigation of each role: (group label or None for top-level links, links). Admins get it as a
# side bar (a menu button on a phone); partners and contacts as a short top bar.
NAVIGATION = {
    Role.ADMIN: [
        (None, [NavLink("Overview", "admin.index", ("admin.index", "admin.dashboard"))]),
        (
            "Billing",
            [
                NavLink(
                    "Invoices",
                    "admin.invoices",
                    (
                        "admin.invoices",
                        "admin.invoice",
                        "admin.document",
                        "admin.documents_status",
                        "admin.employee_lines",
                    ),
                ),
                NavLink("Disputes", "admin.disputes_queue", ("admin.disputes_queue", "admin.dispute")),
                NavLink("Deliveries", "admin.deliveries", ("admin.deliveries", "admin.delivery")),
            ],
        ),
        (
            "Data",
            [
                NavLink(
                    "Uploads",
                    "admin.uploads",
                    ("admin.uploads", "admin.upload", "admin.mappings", "admin.mapping"),
                ),
                NavLink("Quarantine", "admin.quarantine", ("admin.quarantine",)),
                NavLink("Partners", "admin.partners", ("admin.partners", "admin.partner")),
                NavLink(
                    "Customers", "admin.customers", ("admin.customers", "admin.customer", "admin.channel")
                ),
                NavLink(
                    "Employees",
                    "admin.all_employees",
                    ("admin.all_employees", "admin.employees", "admin.employee_form"),
                ),
            ],
        ),
        (
            "System",
            [
                NavLink("Users", "admin.users", ("admin.users", "admin.user")),
                NavLink("Jobs", "admin.failed_jobs", ("admin.failed_jobs", "admin.job")),
                NavLink("Audit log", "admin.audit_events", ("admin.audit_events", "admin.audit")),
            ],
        ),
    ],
    Role.PARTNER: [
        (
            None,
            [
                NavLink("Uploads", "partner.uploads", ("partner.uploads", "partner.upload")),
                NavLink("Mappings", "partner.mappings", ("partner.mappings", "partner.mapping")),
            ],
        ),
    ],
    Role.CUSTOMER: [
        (
            None,
            [
                NavLink(
                    "Invoices",
                    "customer.index",
                    ("customer.index", "customer.invoice", "customer.employee", "customer.line"),
                )
            ],
        ),
    ],
}


def is_htmx() -> bool:
    """Whether htmx sent this request (it answers with a fragment; a browser gets the full page)."""
    return request.headers.get("HX-Request") == "true"


def nav_groups(user) -> list[tuple[str | None, list[NavLink]]]:
    return NAVIGATION.get(user.role, [])


def brand() -> dict:
    """Our name and logo for the page header: COMPANY_LOGO if set, else our mark. Outside a request
    (a template rendered by a job) there is no URL to build, so no logo."""
    logo = None
    if has_request_context():
        logo = (
            url_for("main.brand_logo")
            if current_app.config.get("COMPANY_LOGO")
            else url_for("static", filename="brand.svg")
        )
    return {"name": current_app.config["COMPANY_NAME"], "logo": logo}


def init_app(app: Flask) -> None:
    locale.init_app(app)

    @app.context_processor
    def inject_roles():
        return {
            "Role": Role,
            "embedded_mode": not current_app.config["REDIS_URL"],
            "htmx_config": HTMX_CONFIG,
            "nav_groups": nav_groups,
            "brand": brand(),
        }

    @app.before_request
    def start_embedded_worker():
        if not app.config["REDIS_URL"] and app.config["EMBEDDED_WORKER"] and not app.testing:
            start_embedded(app)

    @app.after_request
    def htmx_login_redirect(response):
        # A section polling or posting after the session ended would follow the redirect and swap
        # the login page into itself: send the whole browser window to the login page instead.
        if (
            response.status_code in (301, 302, 303)
            and is_htmx()
            and request.headers.get("HX-Boosted") != "true"
            and (response.location or "").split("?")[0].endswith(url_for("auth.login"))
        ):
            response.headers["HX-Redirect"] = response.location
            response.status_code = 204
            del response.headers["Location"]
        return response

    @app.after_request
    def htmx_keep_url_on_error(response):
        # A boosted form answered with its errors (4xx) is shown where it was filled in: the address
        # bar keeps the form's page instead of the POST URL (reloading that would answer 405).
        if (
            request.method != "GET"
            and 400 <= response.status_code < 500
            and request.headers.get("HX-Boosted") == "true"
        ):
            response.headers.setdefault("HX-Push-Url", "false")
        return response

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
        # No page needs these browser features: deny them to this site and anything it embeds.
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        if current_app.config["PORTAL_ENV"] != "development":
            # Only over HTTPS from now on (production runs behind TLS; development on plain http).
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return response


def attachment_header(filename: str) -> str:
    """Content-Disposition for a download: an ASCII fallback plus the exact UTF-8 name (RFC 6266)."""
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


def send_stored(key: str, *, filename: str, mimetype: str, size: int, sha256: str | None = None):
    """A download response streaming a stored file in chunks.

    The generator needs no request context (it only reads the storage stream), so none is kept
    alive while the body is sent; the stream is closed when the body ends or the client goes away.
    """
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
