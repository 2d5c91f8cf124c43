"""Partner pages: the landing page (uploads arrive with the ingestion feature)."""

from flask import render_template
from flask_login import current_user

from portal.partner import bp


@bp.route("/")
def index():
    """The partner's landing page: their organisation and what they can do next."""
    return render_template("partner/index.html", partner=current_user.partner)
