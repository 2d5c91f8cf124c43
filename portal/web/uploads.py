"""Upload pages shared by the partner (own uploads, portal/partner/routes.py) and the admin (all,
portal/admin/uploads.py): each blueprint declares the routes and calls the page functions here.

Every upload is fetched through `tenancy.get_or_404`, so a partner asking for another partner's
upload gets 404. Pages stay thin: they parse the form and call one `portal.ingest` function.
"""

from __future__ import annotations

import itertools
import json
from functools import partial

from flask import (
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
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge

from portal import jobs
from portal.core import audit
from portal.core.tenancy import get_or_404, scoped
from portal.errors import error_response
from portal.extensions import db
from portal.ingest.receive import UploadRefused, receive_upload
from portal.ingest.reports import error_file, held_rows, problem_rows, row_messages
from portal.ingest.review import UploadStateError, cancel_upload, import_valid_rows
from portal.models import Customer, Role, Upload, UploadStatus
from portal.web import attachment_header, is_htmx, send_stored
from portal.web.actions import saved
from portal.web.forms import EmptyForm
from portal.web.pagination import paginate, paginate_rows
from portal.web.upload_forms import UploadForm

PAGE_SIZE = 25
PROBLEMS_PAGE_SIZE = 50
HELD_PAGE_SIZE = 50


def endpoint(name: str) -> str:
    """The endpoint `name` of the blueprint serving this request (partner or admin)."""
    return f"{request.blueprint}.{name}"


def _list_context() -> dict:
    page = paginate(scoped(Upload).order_by(Upload.id.desc()), per_page=PAGE_SIZE)
    return {
        "uploads": page.items,
        "page": page.page,
        "pages": page.pages,
        "total": page.total,
        "can_upload": current_user.role == Role.PARTNER,
    }


def uploads():
    """Upload history (newest first) with the upload form; an htmx request gets only the table."""
    context = _list_context()
    if is_htmx() and request.args.get("fragment") == "list":
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
    response.headers["HX-Replace-Url"] = url_for(endpoint("uploads"))
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
        return redirect(url_for(endpoint("upload_detail"), upload_id=received[0].id), 303)
    return redirect(url_for(endpoint("uploads")), 303)


def _too_large_message() -> str:
    limit_mb = current_app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024)
    return f"The file is too large: the limit is {limit_mb} MB."


def upload_too_large(exc: RequestEntityTooLarge):
    """413 on the upload form (raised while the body is read, possibly before the view runs):
    the upload page with the limit at the form; anywhere else the site's error page."""
    if request.endpoint == endpoint("upload_create") and current_user.is_authenticated:
        return _refused(UploadForm(formdata=None), [(_too_large_message(), None)], 413)
    return error_response(413, _too_large_message())


def _problems_context(upload: Upload) -> dict:
    page = paginate_rows(
        partial(problem_rows, upload), total=upload.rejected + upload.conflicts, per_page=PROBLEMS_PAGE_SIZE
    )
    return {
        "problems": [(row, row_messages(row)) for row in page.items],
        "problems_page": page.page,
        "problems_pages": page.pages,
    }


def _held_context(upload: Upload) -> dict:
    """The page of rows held for unknown employees, with the customer code each was sent for."""
    page = paginate_rows(
        partial(held_rows, upload), total=upload.quarantined, per_page=HELD_PAGE_SIZE, arg="held_page"
    )
    rows = page.items
    customer_ids = {row.customer_id for row in rows if row.customer_id is not None}
    codes = dict(
        db.session.execute(select(Customer.id, Customer.code).where(Customer.id.in_(customer_ids))).all()
        if customer_ids
        else []
    )
    return {
        "held": [(row, codes.get(row.customer_id, "")) for row in rows],
        "held_page": page.page,
        "held_pages": page.pages,
    }


def _detail_context(upload: Upload) -> dict:
    alias_customers = []
    if current_user.role == Role.ADMIN and upload.status == UploadStatus.NEEDS_REVIEW:
        alias_customers = db.session.scalars(select(Customer).order_by(Customer.code)).all()
    return {
        "upload": upload,
        "alias_customers": alias_customers,
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
        with saved(UploadStateError) as outcome:
            import_valid_rows(upload, user=current_user)
            outcome.message = f"Imported {upload.imported} line items from {upload.filename}."
    return redirect(url_for(endpoint("upload_detail"), upload_id=upload_id), 303)


def upload_cancel(upload_id: int):
    """Cancel an upload that was not imported; nothing from it is imported."""
    upload = get_or_404(Upload, upload_id)
    if EmptyForm().validate_on_submit():
        with saved(UploadStateError) as outcome:
            cancel_upload(upload, user=current_user, reason=request.form.get("reason", ""))
            outcome.message = f"Cancelled {upload.filename}. Nothing from it was imported."
            outcome.category = "info"
    return redirect(url_for(endpoint("upload_detail"), upload_id=upload_id), 303)
