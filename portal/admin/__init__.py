"""The admin blueprint: every page here is for users with the admin role only."""

from flask import Blueprint

from portal.auth import admin_required

bp = Blueprint("admin", __name__)


@bp.before_request
@admin_required
def guard():
    """Refuse every page of this blueprint to other roles, so no view can forget the check."""
    return None


from portal.admin import routes  # noqa: E402,F401
