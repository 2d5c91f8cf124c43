"""Partner pages: uploads (the landing page), an upload's detail and mapping, mapping profiles.

Each route is one line calling the page shared with the admin (portal/web/uploads.py and
portal/web/mappings.py); the partner blueprint's guard and `tenancy` keep them to the partner's own.
"""

from __future__ import annotations

from werkzeug.exceptions import RequestEntityTooLarge

from portal.partner import bp
from portal.web import mappings as mapping_pages
from portal.web import uploads as upload_pages


@bp.errorhandler(RequestEntityTooLarge)
def too_large(exc: RequestEntityTooLarge):
    """413: the upload page with the size limit at the form (see upload_pages.upload_too_large)."""
    return upload_pages.upload_too_large(exc)


@bp.route("/")
def uploads():
    """The partner's uploads, newest first, with the upload form."""
    return upload_pages.uploads()


@bp.route("/uploads", methods=["POST"])
def upload_create():
    """Receive one or several files and queue each for parsing."""
    return upload_pages.upload_create()


@bp.route("/uploads/<id:upload_id>")
def upload_detail(upload_id: int):
    """One upload: status, counts, problem and held rows, and the actions its status allows."""
    return upload_pages.upload_detail(upload_id)


@bp.route("/uploads/<id:upload_id>/status")
def upload_status(upload_id: int):
    """The self-polling status fragment (htmx)."""
    return upload_pages.upload_status(upload_id)


@bp.route("/uploads/<id:upload_id>/original")
def upload_file(upload_id: int):
    """Download the original file exactly as it was uploaded."""
    return upload_pages.upload_file(upload_id)


@bp.route("/uploads/<id:upload_id>/errors.csv")
def upload_errors(upload_id: int):
    """The problem rows as CSV, with an error column."""
    return upload_pages.upload_errors(upload_id)


@bp.route("/uploads/<id:upload_id>/import", methods=["POST"])
def upload_import(upload_id: int):
    """Import the valid rows of an upload that needs review."""
    return upload_pages.upload_import(upload_id)


@bp.route("/uploads/<id:upload_id>/cancel", methods=["POST"])
def upload_cancel(upload_id: int):
    """Cancel an upload that was not imported."""
    return upload_pages.upload_cancel(upload_id)


@bp.route("/uploads/<id:upload_id>/mapping", methods=["GET", "POST"])
def upload_mapping(upload_id: int):
    """Map the columns of a file no saved profile covers; save the profile and read the file with it."""
    return mapping_pages.upload_mapping(upload_id)


@bp.route("/uploads/<id:upload_id>/mapping/preview", methods=["POST"])
def upload_mapping_preview(upload_id: int):
    """htmx: the preview table for the mapping being edited (changes nothing)."""
    return mapping_pages.upload_mapping_preview(upload_id)


@bp.route("/mappings")
def mappings():
    """The partner's mapping profiles: the newest version of each, with export and import."""
    return mapping_pages.mappings()


@bp.route("/mappings/<name>.json")
def mapping_export(name: str):
    """Download the newest version of profile `name` as JSON."""
    return mapping_pages.mapping_export(name)


@bp.route("/mappings/import", methods=["POST"])
def mapping_import():
    """Save an uploaded JSON profile as a new version."""
    return mapping_pages.mapping_import()
