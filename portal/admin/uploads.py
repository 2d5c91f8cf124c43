"""Admin upload pages: every partner's uploads, an upload's detail and mapping, and each partner's
mapping profiles (under /partners/<id>). Each route calls the page shared with the partner
(portal/web/uploads.py and portal/web/mappings.py)."""

from __future__ import annotations

from flask import abort, redirect, request, url_for
from flask_login import current_user
from werkzeug.exceptions import RequestEntityTooLarge

from portal.accounts.rules import ValidationError
from portal.admin import bp
from portal.extensions import db
from portal.ingest.customers import add_alias
from portal.ingest.review import UploadStateError, recheck_upload
from portal.models import Customer, Upload
from portal.web import mappings as mapping_pages
from portal.web import uploads as upload_pages
from portal.web.actions import saved
from portal.web.forms import EmptyForm
from portal.web.inputs import parse_id


@bp.errorhandler(RequestEntityTooLarge)
def too_large(exc: RequestEntityTooLarge):
    """413: the upload page with the size limit at the form (see upload_pages.upload_too_large)."""
    return upload_pages.upload_too_large(exc)


@bp.route("/uploads")
def uploads():
    """Every partner's uploads, newest first."""
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


@bp.route("/partners/<id:partner_id>/mappings")
def mappings(partner_id: int):
    """A partner's mapping profiles: the newest version of each, with export and import."""
    return mapping_pages.mappings(partner_id)


@bp.route("/partners/<id:partner_id>/mappings/<name>.json")
def mapping_export(partner_id: int, name: str):
    """Download the newest version of profile `name` as JSON."""
    return mapping_pages.mapping_export(name, partner_id)


@bp.route("/partners/<id:partner_id>/mappings/import", methods=["POST"])
def mapping_import(partner_id: int):
    """Save an uploaded JSON profile as a new version."""
    return mapping_pages.mapping_import(partner_id)


@bp.route("/uploads/<id:upload_id>/aliases", methods=["POST"])
def upload_alias(upload_id: int):
    """Add the name a rejected row gave its customer as an alias of one of our customers (for this
    upload's partner), then check the upload again so the rows it rejected for that are read anew."""
    upload = db.get_or_404(Upload, upload_id)
    form = EmptyForm()
    if not form.validate_on_submit():
        abort(400)
    alias = (request.form.get("alias") or "").strip()
    customer = db.session.get(Customer, parse_id(request.form.get("customer_id")) or 0)
    with saved(ValidationError, UploadStateError) as outcome:
        if customer is None:
            raise ValidationError("customer", "choose the customer this name means")
        add_alias(upload.partner, customer, alias, by=current_user)
        recheck_upload(upload, user=current_user, reason=f"alias '{alias}' added for {customer.code}")
        outcome.message = (
            f"'{alias}' now means {customer.code} in {upload.partner.name}'s files; "
            f"upload #{upload.id} is being checked again."
        )
    return redirect(url_for("admin.upload_detail", upload_id=upload.id))
