"""`flask ingest` (a partner file, uploaded and parsed as the partner would) and `flask mappings`
(export and import a partner's mapping profiles as JSON)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from portal import jobs
from portal.cli.common import fail, find_partner
from portal.extensions import db
from portal.ingest.headers import propose_mapping
from portal.ingest.mapping import MappingError
from portal.ingest.profiles import latest_profiles, save_mapping
from portal.ingest.receive import UploadRefused, receive_upload
from portal.ingest.reports import summary
from portal.ingest.review import import_valid_rows, remap_upload
from portal.models import Upload, UploadStatus

mappings_cli = AppGroup("mappings", help="Partners' mapping profiles (JSON files, see README).")


@click.command("ingest")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--partner", "partner_slug", required=True, help="Partner slug.")
@click.option(
    "--accept-valid", is_flag=True, help="If some rows are rejected or in conflict, import the valid ones."
)
@with_appcontext
def ingest(path, partner_slug, accept_valid):
    """Upload a partner file as the partner would, parse it now, and print a JSON summary.

    Exit status 0 when the file was imported, 1 when it needs a mapping or a review, or failed.
    """
    partner = find_partner(partner_slug)
    with path.open("rb") as fh:
        try:
            upload = receive_upload(
                partner, fh, path.name, user=None, max_bytes=current_app.config["MAX_CONTENT_LENGTH"]
            )
        except UploadRefused as exc:
            # The same file waiting for a mapping that now exists: parse that upload, not a copy.
            if exc.existing is None or exc.existing.status != UploadStatus.NEEDS_MAPPING:
                fail(exc)
            upload = exc.existing
            remap_upload(upload, user=None)
    db.session.commit()
    upload_id, job_id = upload.id, upload.job_id
    jobs.run_job(job_id)  # a worker may have taken it first; then wait for it below
    deadline = time.monotonic() + 3600
    while True:
        db.session.expire_all()
        upload = db.session.get(Upload, upload_id)
        if not upload.in_progress or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if upload.status == UploadStatus.NEEDS_REVIEW and accept_valid:
        import_valid_rows(upload, user=None)
        db.session.commit()
    result = summary(upload)
    if upload.status == UploadStatus.NEEDS_MAPPING:
        result["headers"] = upload.headers
        result["proposed_columns"] = propose_mapping(upload.headers or [])
        result["hint"] = (
            "save a mapping with `flask --app portal mappings import`, then ingest the file again"
        )
    click.echo(json.dumps(result, indent=2))
    raise SystemExit(0 if upload.status == UploadStatus.IMPORTED else 1)


@mappings_cli.command("export")
@click.option("--partner", "partner_slug", required=True)
@click.option("--name", default="default", show_default=True, help="Profile name.")
@click.argument("file", type=click.File("w"))
def mappings_export(partner_slug, name, file):
    """Write the partner's current profile NAME as JSON to FILE (- for standard output)."""
    partner = find_partner(partner_slug)
    version = next((v for v in latest_profiles(partner.id) if v.name == name), None)
    if version is None:
        raise click.ClickException(f"partner {partner.slug} has no mapping profile named {name!r}")
    json.dump(version.profile, file, indent=2)
    file.write("\n")
    click.echo(f"Exported {partner.slug} profile {name!r} version {version.version}", err=True)


@mappings_cli.command("import")
@click.option("--partner", "partner_slug", required=True)
@click.option("--name", default="default", show_default=True, help="Profile name.")
@click.argument("file", type=click.File("r"))
def mappings_import(partner_slug, name, file):
    """Save FILE (JSON) as a new version of the partner's profile NAME."""
    partner = find_partner(partner_slug)
    try:
        data = json.load(file)
        version = save_mapping(partner, data, name=name)
        db.session.commit()
    except json.JSONDecodeError as exc:
        fail(ValueError(f"{file.name} is not valid JSON: {exc}"))
    except MappingError as exc:
        fail(ValueError("the mapping profile is not valid:\n  - " + "\n  - ".join(exc.problems)))
    click.echo(f"Saved {partner.slug} profile {name!r} version {version.version}")
