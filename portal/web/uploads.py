"""Upload pages, registered on the partner blueprint (own uploads) and the admin blueprint (all).

Every upload is fetched through `tenancy.get_or_404`, so a partner asking for another partner's
upload gets 404. Routes stay thin: they parse the form and call one `portal.ingest` function.
"""

from __future__ import annotations

import io
import itertools
import json
import re

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user
from sqlalchemy import func, select
from werkzeug.exceptions import RequestEntityTooLarge

from portal import jobs
from portal.core import audit
from portal.core.storage import get_storage
from portal.core.tenancy import get_or_404, scoped
from portal.errors import error_response
from portal.extensions import db
from portal.ingest import limits
from portal.ingest.formats.base import IngestError
from portal.ingest.formats.detect import ensure_seekable, open_source
from portal.ingest.headers import propose_mapping
from portal.ingest.mapping import MappingError, MappingProfile
from portal.ingest.normalize import NormalizedRow, normalize_row
from portal.ingest.profiles import latest_profiles, save_mapping
from portal.ingest.receive import UploadRefused, receive_upload
from portal.ingest.reports import error_file, held_rows, problem_rows, row_messages
from portal.ingest.review import UploadStateError, cancel_upload, import_valid_rows, not_allowed, remap_upload
from portal.models import Customer, Partner, Role, Upload, UploadStatus
from portal.web import attachment_header, send_stored
from portal.web.forms import EmptyForm
from portal.web.inputs import page_arg
from portal.web.upload_forms import (
    MappingForm,
    MappingImportForm,
    UploadForm,
    fill_mapping_form,
    mapping_form_to_profile,
)

PAGE_SIZE = 25
PROBLEMS_PAGE_SIZE = 50
HELD_PAGE_SIZE = 50
PREVIEW_ROWS = 10


def _page() -> int:
    return page_arg()


def _is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def _ep(name: str) -> str:
    return f"{request.blueprint}.{name}"


def _list_context() -> dict:
    page = _page()
    stmt = scoped(Upload).order_by(Upload.id.desc())
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = db.session.scalars(stmt.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    return {
        "uploads": rows,
        "page": page,
        "pages": max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
        "total": total,
        "can_upload": current_user.role == Role.PARTNER,
    }


def uploads():
    """Upload history (newest first) with the upload form; an htmx request gets only the table."""
    context = _list_context()
    if _is_htmx() and request.args.get("fragment") == "list":
        return render_template("uploads/_list.html", **context)
    return render_template("uploads/index.html", form=UploadForm(), upload_errors=[], **context)


def _refused(form: UploadForm, errors: list[tuple[str, int | None]], status: int):
    """The upload page again, with why nothing was received shown at the form (a 4xx answer).

    htmx swaps a 4xx page like a 2xx one; the address bar is set back to the upload page (the form
    posted to a URL that has no page of its own).
    """
    response = make_response(
        render_template("uploads/index.html", form=form, upload_errors=errors, **_list_context()), status
    )
    response.headers["HX-Replace-Url"] = url_for(_ep("uploads"))
    if status >= 500:  # htmx does not swap a 5xx answer: the banner carries the reason instead
        response.headers["HX-Trigger"] = json.dumps({"portal-error": " ".join(m for m, _ in errors)})
    return response


def upload_create():
    """Receive one or several files; each is stored and queued for parsing, or refused with a reason.

    One file received: 303 to its page, which shows the parsing and then the result. Several: 303
    to the list, whose rows show theirs. Nothing received: the upload page again with the reasons
    (400; 409 for a file already uploaded; 413 for a request over the size limit).
    """
    if current_user.role != Role.PARTNER:
        abort(403)
    try:
        form = UploadForm()
        valid = form.validate_on_submit()
    except RequestEntityTooLarge:
        return _refused(UploadForm(formdata=None), [(_too_large_message(), None)], 413)
    if not valid:
        messages = itertools.chain.from_iterable(form.errors.values())
        return _refused(form, [(message, None) for message in messages], 400)
    received: list[Upload] = []
    refused: list[tuple[str, int | None]] = []
    status = 400
    for storage_file in form.files.data:
        try:
            upload = receive_upload(
                current_user.partner,
                storage_file.stream,
                storage_file.filename,
                user=current_user,
                max_bytes=current_app.config["MAX_CONTENT_LENGTH"],
            )
        except UploadRefused as exc:
            db.session.rollback()
            refused.append((str(exc), exc.existing.id if exc.existing else None))
            if exc.unavailable:
                status = 503
            elif exc.existing is not None and status != 503:
                status = 409
            continue
        db.session.commit()
        received.append(upload)
    if not received:
        return _refused(form, refused, status)
    for message, _existing in refused:
        flash(message, "error")
    flash(f"Received {', '.join(u.filename for u in received)}. Parsing has started.", "success")
    if len(received) == 1:
        return redirect(url_for(_ep("upload_detail"), upload_id=received[0].id), 303)
    return redirect(url_for(_ep("uploads")), 303)


def _too_large_message() -> str:
    limit_mb = current_app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024)
    return f"The file is too large: the limit is {limit_mb} MB."


def upload_too_large(exc: RequestEntityTooLarge):
    """413 on the upload form (raised while the body is read, possibly before the view runs):
    the upload page with the limit at the form; anywhere else the site's error page."""
    if request.endpoint == _ep("upload_create") and current_user.is_authenticated:
        return _refused(UploadForm(formdata=None), [(_too_large_message(), None)], 413)
    return error_response(413, _too_large_message())


def _problems_context(upload: Upload) -> dict:
    page = _page()
    rows = problem_rows(upload, limit=PROBLEMS_PAGE_SIZE, offset=(page - 1) * PROBLEMS_PAGE_SIZE)
    total = upload.rejected + upload.conflicts
    return {
        "problems": [(row, row_messages(row)) for row in rows],
        "problems_page": page,
        "problems_pages": max((total + PROBLEMS_PAGE_SIZE - 1) // PROBLEMS_PAGE_SIZE, 1),
    }


def _held_context(upload: Upload) -> dict:
    """The page of rows held for unknown employees, with the customer code each was sent for."""
    page = page_arg("held_page")
    rows = held_rows(upload, limit=HELD_PAGE_SIZE, offset=(page - 1) * HELD_PAGE_SIZE)
    customer_ids = {row.customer_id for row in rows if row.customer_id is not None}
    codes = dict(
        db.session.execute(select(Customer.id, Customer.code).where(Customer.id.in_(customer_ids))).all()
        if customer_ids
        else []
    )
    return {
        "held": [(row, codes.get(row.customer_id, "")) for row in rows],
        "held_page": page,
        "held_pages": max((upload.quarantined + HELD_PAGE_SIZE - 1) // HELD_PAGE_SIZE, 1),
    }


def _detail_context(upload: Upload) -> dict:
    return {
        "upload": upload,
        "progress": jobs.get_progress(upload.job_id) if upload.in_progress else {},
        "form": EmptyForm(),
        **_problems_context(upload),
        **_held_context(upload),
    }


def upload_detail(upload_id: int):
    """One upload: status, counts, the problem and held rows, and the actions its status allows."""
    upload = get_or_404(Upload, upload_id)
    return render_template("uploads/detail.html", **_detail_context(upload))


def upload_status(upload_id: int):
    """The self-polling status fragment (htmx).

    While the file is parsed: the status line again (it polls itself). Once parsing has ended: the
    status line plus, out of band, the page's other sections (file details, counts, problem rows,
    held rows, actions), so the whole page shows the result without a reload.
    """
    upload = get_or_404(Upload, upload_id)
    if request.args.get("from") == "list":
        return render_template("uploads/_row.html", upload=upload)
    context = _detail_context(upload)
    if upload.in_progress:
        return render_template("uploads/_status.html", **context)
    return (
        render_template("uploads/_status.html", **context)
        + render_template("uploads/_result.html", oob=True, **context)
        + render_template("uploads/_meta.html", oob=True, **context)
    )


def upload_file(upload_id: int):
    """Download the original file exactly as it was uploaded."""
    upload = get_or_404(Upload, upload_id)
    audit.record("upload.downloaded", subject=upload, details={"sha256": upload.sha256})
    db.session.commit()
    return send_stored(
        upload.storage_key,
        filename=upload.filename,
        mimetype="application/octet-stream",
        size=upload.size_bytes,
        sha256=upload.sha256,
    )


def upload_errors(upload_id: int):
    """The problem rows as CSV: the original row plus an error column, to fix and send again."""
    upload = get_or_404(Upload, upload_id)
    if upload.rejected + upload.conflicts == 0:
        abort(404)
    response = Response(stream_with_context(error_file(upload)), mimetype="text/csv")
    response.headers["Content-Disposition"] = attachment_header(f"errors-upload-{upload.id}.csv")
    return response


def upload_import(upload_id: int):
    """Import the valid rows of an upload that needs review (POST, CSRF-protected)."""
    upload = get_or_404(Upload, upload_id)
    if EmptyForm().validate_on_submit():
        try:
            import_valid_rows(upload, user=current_user)
            db.session.commit()
            flash(f"Imported {upload.imported} line items from {upload.filename}.", "success")
        except UploadStateError as exc:
            db.session.rollback()
            flash(str(exc), "error")
    return redirect(url_for(_ep("upload_detail"), upload_id=upload_id), 303)


def upload_cancel(upload_id: int):
    """Cancel an upload that was not imported; nothing from it is imported."""
    upload = get_or_404(Upload, upload_id)
    if EmptyForm().validate_on_submit():
        try:
            cancel_upload(upload, user=current_user, reason=request.form.get("reason", ""))
            db.session.commit()
            flash(f"Cancelled {upload.filename}. Nothing from it was imported.", "info")
        except UploadStateError as exc:
            db.session.rollback()
            flash(str(exc), "error")
    return redirect(url_for(_ep("upload_detail"), upload_id=upload_id), 303)


def _preview_rows(upload: Upload, profile_data: dict) -> tuple[list, list[str]]:
    """Normalize the first rows of the stored file with the profile being edited."""
    try:
        profile = MappingProfile.from_json_dict(profile_data)
    except MappingError as exc:
        return [], exc.problems
    stream = get_storage().open(upload.storage_key)
    try:
        with open_source(ensure_seekable(stream)) as parsed:
            rows = list(itertools.islice(parsed.rows, PREVIEW_ROWS))
    except IngestError as exc:
        return [], [str(exc)]
    finally:
        stream.close()
    preview = []
    for row in rows:
        result = normalize_row(row, profile)
        preview.append(
            (
                row.number,
                result if isinstance(result, NormalizedRow) else None,
                result if isinstance(result, list) else [],
            )
        )
    return preview, []


def _mapping_form(upload: Upload) -> MappingForm:
    form = MappingForm()
    # Each select offers every column: never more than the cap (a file over it fails when parsed;
    # this also bounds the page for an upload recorded before the cap existed).
    headers = upload.headers[: limits.MAX_COLUMNS]
    proposal = {
        "columns": propose_mapping(headers),
        "default_currency": upload.partner.default_currency,
        "decimal_separator": ".",
    }
    fill_mapping_form(form, headers, proposal)
    if not form.is_submitted() and latest_profiles(upload.partner_id):
        # A new layout gets its own profile name, so saving it cannot supersede the profile that
        # reads the partner's other files (each name keeps its own versions).
        stem = re.sub(r"[^\w.-]+", "-", upload.filename.rsplit(".", 1)[0]).strip("-.")[:64]
        form.name.data = stem or f"upload-{upload.id}"
    return form


def upload_mapping(upload_id: int):
    """Map the columns of a file that no saved profile covers; save a new profile version and import."""
    upload = get_or_404(Upload, upload_id)
    if upload.status != UploadStatus.NEEDS_MAPPING or not upload.headers:
        flash(not_allowed(upload, "read with a new mapping"), "error")
        return redirect(url_for(_ep("upload_detail"), upload_id=upload.id), 303)
    form = _mapping_form(upload)
    problems: list[str] = []
    if form.validate_on_submit():
        try:
            save_mapping(
                upload.partner, mapping_form_to_profile(form), name=form.name.data, user=current_user
            )
            remap_upload(upload, user=current_user)
            db.session.commit()
            flash("Mapping saved. The file is being read with it now.", "success")
            return redirect(url_for(_ep("upload_detail"), upload_id=upload.id), 303)
        except MappingError as exc:
            db.session.rollback()
            problems = exc.problems
        except UploadStateError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return redirect(url_for(_ep("upload_detail"), upload_id=upload.id), 303)
    preview, preview_problems = _preview_rows(upload, mapping_form_to_profile(form))
    status = 400 if (problems or form.errors) else 200
    return (
        render_template(
            "uploads/mapping.html",
            upload=upload,
            form=form,
            problems=problems,
            preview=preview,
            preview_problems=preview_problems,
        ),
        status,
    )


def upload_mapping_preview(upload_id: int):
    """htmx: the preview table for the mapping being edited (changes nothing)."""
    upload = get_or_404(Upload, upload_id)
    if upload.status != UploadStatus.NEEDS_MAPPING or not upload.headers:
        message = not_allowed(upload, "read with a new mapping")
        return render_template("uploads/_preview.html", preview=[], preview_problems=[message]), 409
    form = _mapping_form(upload)
    preview, preview_problems = _preview_rows(upload, mapping_form_to_profile(form))
    return render_template("uploads/_preview.html", preview=preview, preview_problems=preview_problems)


# --- mapping profiles (partner's own) --------------------------------------------------------------


def _mapping_partner(partner_id: int | None) -> tuple[Partner, dict]:
    """The partner whose profiles are shown: a partner user's own, or (admins) the one in the URL."""
    if current_user.role == Role.PARTNER:
        return current_user.partner, {}
    return db.get_or_404(Partner, partner_id), {"partner_id": partner_id}


def mappings(partner_id: int | None = None):
    """A partner's mapping profiles: the newest version of each, with export and import."""
    partner, url_args = _mapping_partner(partner_id)
    versions = latest_profiles(partner.id)
    return render_template(
        "uploads/mappings.html",
        versions=versions,
        form=MappingImportForm(),
        partner=partner,
        url_args=url_args,
    )


def mapping_export(name: str, partner_id: int | None = None):
    """Download the newest version of profile `name` as the documented JSON file."""
    partner, _ = _mapping_partner(partner_id)
    version = next((v for v in latest_profiles(partner.id) if v.name == name), None)
    if version is None:
        abort(404)
    body = json.dumps(version.profile, indent=2) + "\n"
    response = Response(body, mimetype="application/json")
    response.headers["Content-Disposition"] = attachment_header(
        f"mapping-{partner.slug}-{name}-v{version.version}.json"
    )
    return response


def mapping_import(partner_id: int | None = None):
    """Save an uploaded JSON profile as a new version; every problem in it is listed."""
    partner, url_args = _mapping_partner(partner_id)
    form = MappingImportForm()
    if form.validate_on_submit():
        try:
            data = json.load(io.TextIOWrapper(form.file.data.stream, encoding="utf-8-sig"))
            version = save_mapping(partner, data, name=form.name.data, user=current_user)
            db.session.commit()
            flash(f"Saved profile '{version.name}' version {version.version}.", "success")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            flash(f"The file is not valid JSON: {exc}", "error")
        except MappingError as exc:
            db.session.rollback()
            flash("The mapping profile is not valid: " + "; ".join(exc.problems), "error")
    else:
        for message in itertools.chain.from_iterable(form.errors.values()):
            flash(message, "error")
    return redirect(url_for(_ep("mappings"), **url_args))


def register_upload_views(bp: Blueprint, *, list_rule: str) -> None:
    """Add the upload pages to an actor blueprint (partner: own uploads; admin: all)."""
    bp.add_url_rule(list_rule, "uploads", uploads)
    bp.register_error_handler(RequestEntityTooLarge, upload_too_large)
    bp.add_url_rule("/uploads", "upload_create", upload_create, methods=["POST"])
    bp.add_url_rule("/uploads/<id:upload_id>", "upload_detail", upload_detail)
    bp.add_url_rule("/uploads/<id:upload_id>/status", "upload_status", upload_status)
    bp.add_url_rule("/uploads/<id:upload_id>/original", "upload_file", upload_file)
    bp.add_url_rule("/uploads/<id:upload_id>/errors.csv", "upload_errors", upload_errors)
    bp.add_url_rule("/uploads/<id:upload_id>/import", "upload_import", upload_import, methods=["POST"])
    bp.add_url_rule("/uploads/<id:upload_id>/cancel", "upload_cancel", upload_cancel, methods=["POST"])
    bp.add_url_rule(
        "/uploads/<id:upload_id>/mapping", "upload_mapping", upload_mapping, methods=["GET", "POST"]
    )
    bp.add_url_rule(
        "/uploads/<id:upload_id>/mapping/preview",
        "upload_mapping_preview",
        upload_mapping_preview,
        methods=["POST"],
    )


def register_mapping_views(bp: Blueprint, *, prefix: str = "") -> None:
    """Mapping profile pages: a partner's own (prefix ""), or any partner's for admins
    (prefix "/partners/<id:partner_id>")."""
    bp.add_url_rule(f"{prefix}/mappings", "mappings", mappings)
    bp.add_url_rule(f"{prefix}/mappings/<name>.json", "mapping_export", mapping_export)
    bp.add_url_rule(f"{prefix}/mappings/import", "mapping_import", mapping_import, methods=["POST"])


__all__ = ["register_mapping_views", "register_upload_views"]
