"""The partner's view of an upload's audit trail: received, parsed, imported, downloaded, cancelled.

Scoped twice: the upload must be the partner's (else 404), and so must each event.
"""

from __future__ import annotations

from flask import render_template
from flask_login import current_user

from portal.core.audit import subject_trail
from portal.core.tenancy import get_or_404
from portal.models import Upload
from portal.partner import bp


@bp.route("/uploads/<id:upload_id>/trail")
def upload_trail(upload_id: int):
    """Who did what to this upload and when, newest first; another partner's upload is 404."""
    upload = get_or_404(Upload, upload_id)
    return render_template(
        "audit/trail.html",
        title=f"History of upload {upload.filename}",
        events=subject_trail(upload, user=current_user),
    )
