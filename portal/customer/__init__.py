"""The customer blueprint: every page here is for users with the customer role only."""

from flask import Blueprint

from portal.auth import customer_required

bp = Blueprint("customer", __name__)


@bp.before_request
@customer_required
def guard():
    """Refuse every page of this blueprint to other roles, so no view can forget the check."""
    return None


from portal.customer import routes, trail  # noqa: E402,F401
