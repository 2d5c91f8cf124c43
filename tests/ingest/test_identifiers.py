"""Partner files as they really identify people and employers (issue 14): learners by work email
(or by ID, then email), employers by name, and the aliases admins add from the error itself."""

import io
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from portal import accounts, jobs
from portal.extensions import db
from portal.ingest.customers import CustomerMatcher, add_alias, name_key
from portal.ingest.mapping import MappingError, MappingProfile
from portal.ingest.profiles import save_mapping
from portal.ingest.quarantine import quarantined_employees, release_quarantine
from portal.ingest.receive import receive_upload
from portal.ingest.reports import row_messages, summary
from portal.jobs.workers import drain
from portal.models import Customer, CustomerAlias, Employee, LineItem, Partner, Upload, UploadRow
from tests.factories import events
from tests.samples import PROFILE

DATA = Path(__file__).resolve().parents[1] / "data"

EMAIL_PROFILE = {
    **PROFILE,
    "columns": {
        "employee_email": "Learner Email",
        "employee_name": "Learner",
        "customer_code": "Employer",
        "partner_reference": "Session ID",
        "expense_type": "Service",
        "amount": "Amount",
        "currency": "Currency",
        "service_date": "Date",
    },
    "date_formats": [],
    "employee_key": "email",
}
NAME_PROFILE = {
    **PROFILE,
    "columns": {
        "employee_external_id": "Student ID",
        "employee_name": "Student Name",
        "customer_code": "Company",
        "partner_reference": "Invoice Line",
        "expense_type": "Fee Type",
        "amount": "Amount",
        "currency": "Currency",
        "service_date": "Date of Service",
    },
    "date_formats": [],
    "customer_match": "name",
}


@pytest.fixture
def roster(app, partner):
    """ACME is 'Acme Corporation'; Ana (E100) and Bo (E101) have work emails on the roster."""
    with app.app_context():
        acme = db.session.scalar(select(Customer).where(Customer.code == "ACME"))
        acme.name = "Acme Corporation"
        for external_id, email in (("E100", "ana.souza@acme.example"), ("E101", "Bo.Chen@ACME.example")):
            employee = db.session.scalar(
                select(Employee).where(Employee.customer_id == acme.id, Employee.external_id == external_id)
            )
            employee.email = email
        db.session.commit()
    return partner


def upload_file(app, data: bytes, name: str, profile: dict, run: bool = True) -> dict:
    with app.app_context():
        p = db.session.get(Partner, 1)
        save_mapping(p, profile, name="default")
        upload = receive_upload(p, io.BytesIO(data), name, user=None, max_bytes=10 * 1024 * 1024)
        db.session.commit()
        upload_id, job_id = upload.id, upload.job_id
    if run:
        with app.app_context():
            jobs.run_job(job_id)
    with app.app_context():
        return summary(db.session.get(Upload, upload_id))


def staged(app, upload_id: int) -> list[UploadRow]:
    with app.app_context():
        return db.session.scalars(
            select(UploadRow).where(UploadRow.upload_id == upload_id).order_by(UploadRow.row_number)
        ).all()


def acme_employee(external_id: str):
    """ACME's employee of that ID (GLOBEX numbers its staff the same way)."""
    return (
        select(Employee)
        .join(Customer, Customer.id == Employee.customer_id)
        .where(Customer.code == "ACME", Employee.external_id == external_id)
    )


def employee_id(app, external_id: str) -> int:
    with app.app_context():
        return db.session.scalar(acme_employee(external_id)).id


# -- the profile -------------------------------------------------------------------------------


def test_profile_without_any_employee_column_is_refused_with_a_clear_message():
    columns = {k: v for k, v in PROFILE["columns"].items() if k != "employee_external_id"}
    with pytest.raises(MappingError) as exc:
        MappingProfile.from_json_dict({**PROFILE, "columns": columns})
    assert any("the profile identifies no employee" in p for p in exc.value.problems)


def test_profile_by_email_without_an_email_column_names_the_missing_field():
    with pytest.raises(MappingError) as exc:
        MappingProfile.from_json_dict({**PROFILE, "employee_key": "email"})
    assert "employee_key 'email' needs the field 'employee_email' mapped to a column" in exc.value.problems


@pytest.mark.parametrize(("key", "value"), [("employee_key", "badge"), ("customer_match", "vat")])
def test_profile_with_an_unknown_choice_lists_the_allowed_ones(key, value):
    with pytest.raises(MappingError) as exc:
        MappingProfile.from_json_dict({**PROFILE, key: value})
    assert any(p.startswith(f"'{key}' must be one of") for p in exc.value.problems)


def test_stored_profile_without_the_new_keys_reads_as_before():
    old = {k: v for k, v in PROFILE.items() if k not in ("employee_key", "customer_match")}
    profile = MappingProfile.from_json_dict(old)
    assert (profile.employee_key, profile.customer_match) == ("external_id", "code")


# -- learners by email -------------------------------------------------------------------------


FORMATS = ["csv", "json", "jsonl", "xlsx", "docx"]


@pytest.mark.parametrize("name", [f"learners_by_email.{ext}" for ext in FORMATS])
def test_rows_by_email_match_the_roster_whatever_the_case(app, roster, name):
    result = upload_file(app, (DATA / name).read_bytes(), name, EMAIL_PROFILE)
    assert (result["accepted"], result["quarantined"], result["rejected"]) == (2, 1, 0)
    rows = staged(app, result["upload_id"])
    assert [r.employee_email for r in rows] == [
        "ana.souza@acme.example", "bo.chen@acme.example", "new.hire@acme.example",
    ]  # fmt: skip
    assert [r.employee_id for r in rows[:2]] == [employee_id(app, "E100"), employee_id(app, "E101")]


def test_unknown_email_is_held_and_its_release_adds_the_email_to_the_roster(app, roster):
    data = (DATA / "learners_by_email.csv").read_bytes()
    result = upload_file(app, data, "learners_by_email.csv", EMAIL_PROFILE)
    assert result["status"] == "imported"
    with app.app_context():
        [held] = quarantined_employees()
        assert (held["external_id"], held["email"], held["rows"]) == (None, "new.hire@acme.example", 1)
        acme = db.session.scalar(select(Customer).where(Customer.code == "ACME"))
        employee = db.session.scalar(acme_employee("E105"))
        count = release_quarantine(acme, None, employee, user=None, email=held["email"], add_email=True)
        db.session.commit()
        assert count == 1 and employee.email == "new.hire@acme.example"
        assert quarantined_employees() == []
        assert db.session.scalar(select(LineItem.employee_id).where(LineItem.partner_reference == "S-3")) == (
            employee.id
        )
    # the next file's rows for that learner match at once
    again = data.replace(b"S-", b"N-")
    assert upload_file(app, again, "november.csv", EMAIL_PROFILE)["quarantined"] == 0


def test_release_refuses_to_overwrite_an_email_the_employee_already_has(app, roster):
    upload_file(app, (DATA / "learners_by_email.csv").read_bytes(), "l.csv", EMAIL_PROFILE)
    with app.app_context():
        acme = db.session.scalar(select(Customer).where(Customer.code == "ACME"))
        ana = db.session.scalar(acme_employee("E100"))
        with pytest.raises(accounts.ValidationError, match="already has the email ana.souza@acme.example"):
            release_quarantine(acme, None, ana, user=None, email="new.hire@acme.example", add_email=True)


EITHER_PROFILE = {
    **PROFILE,
    "columns": {**PROFILE["columns"], "employee_email": "Email"},
    "employee_key": "either",
}
EITHER_HEADER = (
    "Employee ID,Employee Name,Employer,Transaction ID,Fee Type,Amount,Currency,Date of Service,Course,Term,"
    "Email\n"
)


def either_file(*rows: str) -> bytes:
    return (EITHER_HEADER + "".join(r + "\n" for r in rows)).encode()


def test_either_uses_the_id_first_then_the_email(app, roster):
    data = either_file(
        "E100,Ana,ACME,T-1,Tuition,10.00,USD,15.01.2026,,,",  # the ID alone
        "E999,Bo,ACME,T-2,Tuition,20.00,USD,15.01.2026,,,BO.CHEN@acme.example",  # unknown ID: the email
        ",Ana,ACME,T-3,Tuition,30.00,USD,15.01.2026,,,ana.souza@acme.example",  # no ID: the email
    )
    result = upload_file(app, data, "either.csv", EITHER_PROFILE)
    assert (result["accepted"], result["rejected"], result["quarantined"]) == (3, 0, 0)
    ids = [r.employee_id for r in staged(app, result["upload_id"])]
    assert ids == [employee_id(app, "E100"), employee_id(app, "E101"), employee_id(app, "E100")]


def test_either_refuses_a_row_whose_id_and_email_are_two_people_naming_both(app, roster):
    data = either_file("E100,Ana,ACME,T-1,Tuition,10.00,USD,15.01.2026,,,bo.chen@acme.example")
    result = upload_file(app, data, "clash.csv", EITHER_PROFILE)
    assert result["rejected"] == 1
    [row] = staged(app, result["upload_id"])
    [message] = row_messages(row)
    assert (
        message["message"]
        == "employee ID 'E100' and email 'bo.chen@acme.example' are two different employees"
    )


def test_either_row_with_neither_id_nor_email_is_refused(app, roster):
    result = upload_file(
        app, either_file(",Ana,ACME,T-1,Tuition,10.00,USD,15.01.2026,,,"), "n.csv", EITHER_PROFILE
    )
    [row] = staged(app, result["upload_id"])
    assert "neither an employee ID nor an email" in row_messages(row)[0]["message"]


def test_email_that_is_not_one_is_rejected_with_the_field_named(app, roster):
    data = (DATA / "learners_by_email.csv").read_bytes().replace(b"bo.chen@acme.example", b"bo.chen at acme")
    result = upload_file(app, data, "bad.csv", EMAIL_PROFILE)
    bad = [r for r in staged(app, result["upload_id"]) if r.outcome == "rejected"]
    assert [(m["field"], m["value"]) for m in row_messages(bad[0])] == [("employee_email", "bo.chen at acme")]


# -- employers by name -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["employers_by_name.xlsx", "employers_by_name.docx", "employers_by_name.json"]
)
def test_employer_names_match_whatever_the_case_accents_or_punctuation(app, roster, name):
    result = upload_file(app, (DATA / name).read_bytes(), name, NAME_PROFILE)
    assert (result["status"], result["imported"], result["rejected"]) == ("imported", 3, 0)
    with app.app_context():
        acme = db.session.scalar(select(Customer.id).where(Customer.code == "ACME"))
        assert set(db.session.scalars(select(LineItem.customer_id))) == {acme}


def test_name_key_ignores_case_accents_punctuation_and_spacing():
    assert name_key("  Acmé  Corporation. ") == name_key("ACME CORPORATION") == "acme corporation"


def test_name_two_customers_share_is_an_error_naming_both_never_a_guess(app, roster):
    with app.app_context():
        globex = db.session.scalar(select(Customer).where(Customer.code == "GLOBEX"))
        globex.name = "Acme Corporation"
        db.session.commit()
    result = upload_file(app, (DATA / "employers_by_name.xlsx").read_bytes(), "n.xlsx", NAME_PROFILE)
    assert result["rejected"] == 3
    message = row_messages(staged(app, result["upload_id"])[0])[0]["message"]
    assert message.startswith("'Acme Corporation' is the name of several customers (ACME, GLOBEX)")


def test_unknown_name_is_rejected_and_says_an_admin_can_add_an_alias(app, roster):
    data = (
        (DATA / "employers_by_name.json").read_bytes().replace(b'"Acme Corporation"', b'"Acme Holdings Ltd."')
    )
    result = upload_file(app, data, "n.json", NAME_PROFILE)
    assert result["rejected"] == 1 and result["status"] == "needs_review"
    message = row_messages(staged(app, result["upload_id"])[0])[0]
    assert message == {
        "field": "customer_code",
        "value": "Acme Holdings Ltd.",
        "message": (
            "'Acme Holdings Ltd.' is not a known customer name; an admin can add it as an alias of a customer"
        ),
    }


def test_alias_added_from_the_error_rechecks_the_upload_and_imports_it(app, client, auth, roster):
    data = (
        (DATA / "employers_by_name.json").read_bytes().replace(b'"Acme Corporation"', b'"Acme Holdings Ltd."')
    )
    result = upload_file(app, data, "n.json", NAME_PROFILE)
    auth.login("admin@example.com")
    page = client.get(f"/admin/uploads/{result['upload_id']}").get_data(as_text=True)
    assert "“Acme Holdings Ltd.” means" in page and "Add alias and check again" in page
    with app.app_context():
        acme = db.session.scalar(select(Customer.id).where(Customer.code == "ACME"))
    response = client.post(
        f"/admin/uploads/{result['upload_id']}/aliases",
        data={"alias": "Acme Holdings Ltd.", "customer_id": acme},
    )
    assert response.status_code == 302
    drain(app)
    with app.app_context():
        upload = db.session.get(Upload, result["upload_id"])
        assert (upload.status.value, upload.imported, upload.rejected) == ("imported", 3, 0)
    [event] = events(app, "customer.alias_added")
    assert event.details == {"alias": "Acme Holdings Ltd.", "partner": "state-u", "customer": "ACME"}
    assert [e.details["reason"] for e in events(app, "upload.rechecked")] == [
        "alias 'Acme Holdings Ltd.' added for ACME"
    ]


def test_alias_is_per_partner_and_cannot_name_two_customers(app, roster):
    with app.app_context():
        state_u = db.session.get(Partner, 1)
        other = accounts.create_partner(slug="other-u", name="Other University")
        acme = db.session.scalar(select(Customer).where(Customer.code == "ACME"))
        globex = db.session.scalar(select(Customer).where(Customer.code == "GLOBEX"))
        add_alias(state_u, acme, "Contoso Ltd.", by=None)
        with pytest.raises(accounts.ValidationError, match="already uses 'Contoso Ltd.' for customer ACME"):
            add_alias(state_u, globex, "CONTOSO LTD", by=None)
        add_alias(other, globex, "Contoso Ltd.", by=None)  # another partner may mean another customer
        db.session.commit()
        assert CustomerMatcher.load(state_u.id).match("contoso ltd", by="name") == (acme.id, None)
        assert CustomerMatcher.load(other.id).match("Contoso Ltd", by="code") == (globex.id, None)
        assert db.session.query(CustomerAlias).count() == 2


# -- the mapping page and export/import --------------------------------------------------------


def test_mapping_preview_shows_whom_each_row_goes_to(app, client, auth, roster):
    data = (DATA / "learners_by_email.csv").read_bytes()
    with app.app_context():
        p = db.session.get(Partner, 1)
        upload = receive_upload(p, io.BytesIO(data), "fresh.csv", user=None, max_bytes=10**6)
        db.session.commit()
        upload_id, job_id = upload.id, upload.job_id
        jobs.run_job(job_id)  # no profile covers these headers: it needs a mapping
    auth.login("partner@example.com")
    form = {f"col_{k}": v for k, v in EMAIL_PROFILE["columns"].items()}
    form |= {"name": "tutoring", "decimal_separator": ".", "employee_key": "email", "customer_match": "code"}
    page = client.post(f"/partner/uploads/{upload_id}/mapping/preview", data=form).get_data(as_text=True)
    assert "→ Person 100 (E100)" in page and "→ ACME" in page
    assert "not on the roster: the row waits in quarantine" in page


def test_mappings_export_import_round_trips_the_identifier_choices(app, runner, roster, tmp_path):
    with app.app_context():
        either = {"employee_key": "either", "columns": {**NAME_PROFILE["columns"], "employee_email": "Email"}}
        save_mapping(db.session.get(Partner, 1), NAME_PROFILE | either, name="registrar")
        db.session.commit()
    out = tmp_path / "registrar.json"
    assert (
        runner.invoke(
            args=["mappings", "export", "--partner", "state-u", "--name", "registrar", str(out)]
        ).exit_code
        == 0
    )
    exported = json.loads(out.read_text())
    assert (exported["employee_key"], exported["customer_match"]) == ("either", "name")
    result = runner.invoke(
        args=["mappings", "import", "--partner", "state-u", "--name", "registrar", str(out)]
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        from portal.ingest.profiles import latest_profiles

        latest = {v.name: v.profile for v in latest_profiles(1)}["registrar"]
        assert (latest["employee_key"], latest["customer_match"]) == ("either", "name")


def test_a_tutoring_providers_headers_are_proposed_as_a_mapping_by_email():
    from portal.ingest.headers import propose_mapping

    headers = ["Learner Email", "Learner", "Employer", "Session ID", "Service", "Amount", "Currency", "Date"]
    assert propose_mapping(headers) == EMAIL_PROFILE["columns"]
