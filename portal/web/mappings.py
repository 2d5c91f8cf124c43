"""Mapping pages shared by the partner and admin blueprints: read an upload with a new column
mapping (with a live preview), and a partner's saved mapping profiles (list, export, import)."""

from __future__ import annotations

import io
import itertools
import json
import re
from typing import NamedTuple

from flask import Response, abort, flash, redirect, render_template, url_for
from flask_login import current_user

from portal.core.storage import get_storage
from portal.core.tenancy import get_or_404
from portal.extensions import db
from portal.ingest import limits
from portal.ingest.formats.base import IngestError
from portal.ingest.formats.detect import ensure_seekable, open_source
from portal.ingest.headers import propose_amount_unit, propose_mapping
from portal.ingest.mapping import MappingError, MappingProfile, row_key_columns
from portal.ingest.normalize import NormalizedRow, normalize_row
from portal.ingest.parse import describe_matches
from portal.ingest.profiles import latest_profiles, save_mapping
from portal.ingest.review import UploadStateError, not_allowed, remap_upload
from portal.models import Partner, Role, Upload, UploadStatus
from portal.web import attachment_header
from portal.web.upload_forms import MappingForm, MappingImportForm, fill_mapping_form, mapping_form_to_profile
from portal.web.uploads import endpoint

PREVIEW_ROWS = 10


class PreviewRow(NamedTuple):
    number: int
    row: NormalizedRow | None
    problems: list
    match: object  # whom the row goes to (parse.describe_matches), None for a row with problems
    amount_text: str


def _preview_rows(upload: Upload, profile_data: dict) -> tuple[list, list[str]]:
    """Normalize the first rows of the stored file with the profile being edited."""
    try:
        profile = MappingProfile.from_json_dict(profile_data)
    except MappingError as exc:
        return [], exc.problems
    stream = get_storage().open(upload.storage_key)
    try:
        with open_source(ensure_seekable(stream)) as parsed:
            parsed.skip_trailing_rows(row_key_columns(profile))
            rows = list(itertools.islice(parsed.rows, PREVIEW_ROWS))
    except IngestError as exc:
        return [], [str(exc)]
    finally:
        stream.close()
    amount_header = profile.columns.get("amount")
    results = [normalize_row(row, profile) for row in rows]
    readable = [r for r in results if isinstance(r, NormalizedRow)]
    matches = iter(describe_matches(readable, profile, upload.partner_id))
    preview = []
    for row, result in zip(rows, results, strict=True):
        readable_row = isinstance(result, NormalizedRow)
        preview.append(
            PreviewRow(
                row.number,
                result if readable_row else None,
                [] if readable_row else result,
                next(matches) if readable_row else None,
                # Shown beside the amount read, so the effect of the amount unit is visible.
                (row.cells.get(amount_header) or "").strip() if amount_header else "",
            )
        )
    return preview, []


def _mapping_form(upload: Upload) -> MappingForm:
    form = MappingForm()
    # Each select offers every column: never more than the cap (a file over it fails when parsed;
    # this also bounds the page for an upload recorded before the cap existed).
    headers = upload.headers[: limits.MAX_COLUMNS]
    columns = propose_mapping(headers)
    proposal = {
        "columns": columns,
        "default_currency": upload.partner.default_currency,
        "decimal_separator": ".",
        "amount_unit": propose_amount_unit(columns.get("amount")),
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
        return redirect(url_for(endpoint("upload_detail"), upload_id=upload.id), 303)
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
            return redirect(url_for(endpoint("upload_detail"), upload_id=upload.id), 303)
        except MappingError as exc:
            db.session.rollback()
            problems = exc.problems
        except UploadStateError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return redirect(url_for(endpoint("upload_detail"), upload_id=upload.id), 303)
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


# --- mapping profiles ------------------------------------------------------------------------------


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
    return redirect(url_for(endpoint("mappings"), **url_args))
