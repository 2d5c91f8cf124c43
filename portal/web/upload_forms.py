"""Forms of the upload pages (shared by the partner and admin blueprints)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired, MultipleFileField
from wtforms import SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, Regexp

from portal.ingest.headers import CANONICAL_FIELDS

FIELD_LABELS = {
    "employee_external_id": "Employee ID",
    "employee_email": "Employee work email",
    "employee_name": "Employee name",
    "customer_code": "Customer (employer)",
    "partner_reference": "Your line reference",
    "expense_type": "Expense type",
    "amount": "Amount",
    "currency": "Currency",
    "service_date": "Service date",
    "description": "Description / course",
    "term": "Term",
}
NOT_IN_FILE = ""


class UploadForm(FlaskForm):
    files = MultipleFileField("Files", validators=[FileRequired("Choose at least one file.")])
    submit = SubmitField("Upload")


class MappingImportForm(FlaskForm):
    file = FileField("Mapping profile (JSON)", validators=[FileRequired("Choose a JSON file.")])
    name = StringField(
        "Profile name",
        default="default",
        validators=[
            DataRequired(),
            Length(max=64),
            Regexp(r"^[\w .-]+$", message="Letters, digits, spaces, . _ -"),
        ],
    )
    submit = SubmitField("Import profile")


class MappingForm(FlaskForm):
    """Column choices are the uploaded file's headers; one select per canonical field."""

    name = StringField(
        "Profile name",
        default="default",
        validators=[
            DataRequired(),
            Length(max=64),
            Regexp(r"^[\w .-]+$", message="Letters, digits, spaces, . _ -"),
        ],
    )
    date_formats = StringField(
        "Date formats",
        description=(
            "strptime formats tried in order, separated by commas, e.g. %m/%d/%Y. ISO dates always work."
        ),
        validators=[Optional(), Length(max=500)],
    )
    decimal_separator = SelectField(
        "Decimal separator", choices=[(".", "Point: 1,234.56"), (",", "Comma: 1.234,56")], default="."
    )
    amount_unit = SelectField(
        "Amounts are written in",
        choices=[
            ("major", "Currency units: 1250.50 is 1,250.50"),
            ("minor", "Minor units (cents): 125050 is 1,250.50"),
        ],
        default="major",
        description="Minor units follow each currency: 125050 is ¥125,050 in JPY and 125.050 in BHD.",
    )
    default_currency = StringField("Default currency", validators=[Optional(), Length(min=3, max=3)])
    default_customer = StringField(
        "Default customer code",
        description="For files that are all for one employer.",
        validators=[Optional()],
    )
    employee_key = SelectField(
        "How rows name the employee",
        choices=[
            ("external_id", "By employee ID"),
            ("email", "By work email"),
            ("either", "By either: the ID first, then the email"),
        ],
        default="external_id",
    )
    customer_match = SelectField(
        "The customer column holds",
        choices=[
            ("code", "Our customer code (e.g. ACME)"),
            ("name", "The employer's name (e.g. Acme Corp.)"),
        ],
        default="code",
    )
    expense_type_synonyms = TextAreaField(
        "Expense type wording",
        description="One per line: your wording = tuition, materials, tutoring, fees or other.",
        validators=[Optional(), Length(max=5000)],
    )
    submit = SubmitField("Save mapping and import")


for _field in CANONICAL_FIELDS:
    setattr(
        MappingForm,
        f"col_{_field}",
        SelectField(FIELD_LABELS[_field] + (" *" if CANONICAL_FIELDS[_field] else ""), validate_choice=False),
    )


def mapping_form_to_profile(form: MappingForm) -> dict:
    """The profile JSON (see portal.ingest.mapping) described by the form; validation is the caller's."""
    columns = {}
    for field in CANONICAL_FIELDS:
        header = getattr(form, f"col_{field}").data
        if header and header != NOT_IN_FILE:
            columns[field] = header
    synonyms = {}
    for line in (form.expense_type_synonyms.data or "").splitlines():
        if "=" in line:
            wording, _, target = line.rpartition("=")
            if wording.strip():
                synonyms[wording.strip()] = target.strip().lower()
    formats = [f.strip() for f in (form.date_formats.data or "").split(",") if f.strip()]
    return {
        "format": "tuition-portal/mapping-profile",
        "version": 1,
        "columns": columns,
        "date_formats": formats,
        "decimal_separator": form.decimal_separator.data,
        "default_currency": (form.default_currency.data or "").strip().upper() or None,
        "default_customer": (form.default_customer.data or "").strip().upper() or None,
        "expense_type_synonyms": synonyms,
        "sheet": None,
        "amount_unit": form.amount_unit.data or "major",
        "employee_key": form.employee_key.data or "external_id",
        "customer_match": form.customer_match.data or "code",
    }


def _proposed_key(profile: dict) -> str:
    """A file with an email column and no ID column names its learners by email."""
    columns = profile.get("columns", {})
    if "employee_email" in columns:
        return "either" if "employee_external_id" in columns else "email"
    return "external_id"


def fill_mapping_form(form: MappingForm, headers: list[str], profile: dict) -> None:
    """Set the select choices to the file's headers and pre-fill from `profile` (a proposal or saved)."""
    choices = [(NOT_IN_FILE, "— not in this file —")] + [(h, h) for h in headers]
    for field in CANONICAL_FIELDS:
        select = getattr(form, f"col_{field}")
        select.choices = choices
        if not form.is_submitted():
            select.data = profile.get("columns", {}).get(field, NOT_IN_FILE)
    if not form.is_submitted():
        form.date_formats.data = ", ".join(profile.get("date_formats", []))
        form.decimal_separator.data = profile.get("decimal_separator", ".")
        form.amount_unit.data = profile.get("amount_unit", "major")
        form.default_currency.data = profile.get("default_currency") or ""
        form.default_customer.data = profile.get("default_customer") or ""
        form.employee_key.data = profile.get("employee_key") or _proposed_key(profile)
        form.customer_match.data = profile.get("customer_match") or "code"
        form.expense_type_synonyms.data = "\n".join(
            f"{k} = {v}" for k, v in profile.get("expense_type_synonyms", {}).items()
        )
