"""The mapping page offers the amount unit, proposes it from the amount column's name, shows its
effect in the live preview, and saves it with the profile."""

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.jobs.workers import drain
from portal.models import LineItem, MappingProfileVersion
from tests.partner.test_upload_pages import _mapping_form, _upload, post_files

CENTS = (
    b"Student ID,amount_cents,Date,Ref,Type,Employer\nE100,125050,2026-10-05T21:30:00-05:00,R1,Tuition,ACME\n"
)


@pytest.fixture
def partner_client(client, auth, partner):
    auth.login("partner@example.com")
    return client


def _needs_mapping(app, client):
    post_files(client, ("feed.csv", CENTS))
    drain(app)
    upload = _upload(app)
    assert upload.status.value == "needs_mapping"
    return upload.id


def _form(**overrides):
    return _mapping_form(
        col_employee_external_id="Student ID",
        col_amount="amount_cents",
        col_service_date="Date",
        col_partner_reference="Ref",
        col_expense_type="Type",
        col_customer_code="Employer",
        **overrides,
    )


def test_mapping_page_when_amount_column_says_cents_proposes_minor_units(app, partner_client):
    upload_id = _needs_mapping(app, partner_client)
    page = partner_client.get(f"/partner/uploads/{upload_id}/mapping").data.decode()
    assert '<label for="amount_unit">Amounts are written in</label>' in page
    assert '<option selected value="minor">' in page or 'value="minor" selected' in page


def test_mapping_preview_when_minor_units_shows_amount_read_beside_amount_written(app, partner_client):
    upload_id = _needs_mapping(app, partner_client)
    url = f"/partner/uploads/{upload_id}/mapping/preview"
    minor = partner_client.post(url, data=_form(amount_unit="minor")).data.decode()
    major = partner_client.post(url, data=_form(amount_unit="major")).data.decode()
    assert "$1,250.50" in minor and "written “125050”" in minor
    assert "$125,050.00" in major
    assert "Oct\xa05,\xa02026" in minor  # the timestamp's own date, not UTC's


def test_mapping_save_when_minor_units_stores_them_and_imports_cents(app, partner_client):
    upload_id = _needs_mapping(app, partner_client)
    partner_client.post(
        f"/partner/uploads/{upload_id}/mapping", data=_form(amount_unit="minor"), follow_redirects=True
    )
    drain(app)
    assert _upload(app).status.value == "imported"
    with app.app_context():
        saved = db.session.scalar(
            select(MappingProfileVersion).where(MappingProfileVersion.name == "registrar")
        )
        assert saved.profile["amount_unit"] == "minor"
        (line,) = db.session.scalars(select(LineItem)).all()
        assert (line.amount_minor, line.service_date.isoformat()) == (125050, "2026-10-05")
