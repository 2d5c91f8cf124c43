"""The admin blueprint: every page here is for users with the admin role only."""

from flask import Blueprint

from portal.auth import admin_required

bp = Blueprint("admin", __name__)


@bp.before_request
@admin_required
def guard():
    """Refuse every page of this blueprint to other roles, so no view can forget the check."""
    return None


# Each module registers its pages on bp (they import bp from here, hence the import at the end).
from portal.admin import (  # noqa: E402,F401
    audit_views,
    customers,
    dashboard,
    delivery,
    invoices,
    jobs,
    partners,
    routes,
    uploads,
    users,
)
