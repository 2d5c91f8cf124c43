"""The partner blueprint: every page here is for users with the partner role only."""

from flask import Blueprint

from portal.auth import partner_required

bp = Blueprint("partner", __name__)


@bp.before_request
@partner_required
def guard():
    """Refuse every page of this blueprint to other roles, so no view can forget the check."""
    return None


from portal.partner import routes, trail  # noqa: E402,F401
