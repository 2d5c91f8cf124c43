"""Pages that belong to no single actor: the home redirect and the health check."""

from flask import Blueprint

bp = Blueprint("main", __name__)

from portal.main import routes  # noqa: E402,F401
