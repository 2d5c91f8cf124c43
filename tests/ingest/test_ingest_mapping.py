"""Header proposals (headers.py), the profile JSON format (mapping.py), row normalization and
fingerprints (normalize.py). A row's every problem is reported with its field; no value is guessed."""

import copy
import datetime as dt

import pytest

from portal.ingest.formats.base import SourceRow
from portal.ingest.headers import HEADER_SYNONYMS, header_key, match_header, propose_mapping
from portal.ingest.mapping import MappingError, MappingProfile, missing_required
from portal.ingest.normalize import NormalizedRow, RowProblem, content_fingerprint, normalize_row
from tests.samples import PROFILE

HEADERS = [
    "Employee ID",
    "Employee Name",
    "Employer",
    "Transaction ID",
    "Fee Type",
    "Amount",
    "Currency",
    "Date of Service",
    "Course",
    "Term",
]


def profile(**overrides):
    base = dict(columns=propose_mapping(HEADERS), date_formats=[], decimal_separator=".")
    base.update(overrides)
    return MappingProfile(**base)


def row(**cells):
    values = dict(
        zip(
            HEADERS,
            ["E1", "Ana", "ACME", "T-1", "Tuition", "1,234.50", "USD", "2026-01-15", "Econ 101", "Spring"],
            strict=True,
        )
    )
    values.update({k.replace("_", " "): v for k, v in cells.items()})
    return SourceRow(number=7, cells=values)


# ---------------------------------------------------------------- headers


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("Student ID", "employee_external_id"),
        ("employee #", "employee_external_id"),
        ("Emp. No.", "employee_external_id"),
        ("EMP_ID", "employee_external_id"),
        ("Name", "employee_name"),
        ("Amount Due", "amount"),
        ("Txn Date", "service_date"),
        ("Ref", "partner_reference"),
        ("Customer Code", "customer_code"),
        ("Item Type", "expense_type"),
        ("Item", "description"),
        ("Semester", "term"),
        ("Curr.", "currency"),
    ],
)
def test_match_header_when_synonym_variant_returns_field(header, field):
    assert match_header(header) == field


def test_match_header_when_unknown_returns_none():
    assert match_header("Favourite colour") is None


def test_header_key_when_hash_or_no_treats_as_number():
    assert header_key("Employee #") == header_key("Employee No.") == header_key("employee number")


def test_header_synonyms_when_normalized_are_unique_across_fields():
    seen = {}
    for field, names in HEADER_SYNONYMS.items():
        for name in names:
            assert seen.setdefault(header_key(name), field) == field


def test_propose_mapping_when_standard_headers_maps_every_field():
    assert propose_mapping(HEADERS) == {
        "employee_external_id": "Employee ID",
        "employee_name": "Employee Name",
        "customer_code": "Employer",
        "partner_reference": "Transaction ID",
        "expense_type": "Fee Type",
        "amount": "Amount",
        "currency": "Currency",
        "service_date": "Date of Service",
        "description": "Course",
        "term": "Term",
    }


def test_propose_mapping_when_two_headers_match_same_field_prefers_more_specific():
    proposal = propose_mapping(["Total", "Amount Due", "Date", "Service Date"])
    assert proposal["amount"] == "Amount Due"
    assert proposal["service_date"] == "Service Date"


def test_propose_mapping_when_mapping_each_header_used_at_most_once():
    proposal = propose_mapping(["Item", "Item Type", "Type"])
    assert len(set(proposal.values())) == len(proposal)
    assert proposal == {"expense_type": "Item Type", "description": "Item"}


def test_propose_mapping_when_header_contains_synonym_words_maps_it():
    assert propose_mapping(["Tuition Amount (USD)"]) == {"amount": "Tuition Amount (USD)"}


def test_propose_mapping_when_header_contains_words_of_two_fields_leaves_it_unmapped():
    assert propose_mapping(["Amount Currency"]) == {}


# ---------------------------------------------------------------- profile JSON


def valid_json():
    return {
        **PROFILE,
        "columns": propose_mapping(HEADERS),
        "date_formats": ["%d/%m/%Y"],
        "decimal_separator": ",",
        "default_currency": "eur",
        "expense_type_synonyms": {"Kursgebühr": "tuition"},
        "sheet": "Charges",
    }


def test_profile_from_json_dict_when_valid_round_trips():
    loaded = MappingProfile.from_json_dict(valid_json())
    assert loaded.default_currency == "EUR"
    assert MappingProfile.from_json_dict(loaded.to_json_dict()) == loaded


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda d: d["columns"].update({"salary": "Pay"}), "unknown field 'salary'"),
        (lambda d: d["columns"].pop("amount"), "required field 'amount' is not mapped"),
        (lambda d: d["columns"].pop("customer_code"), "required field 'customer_code' is not mapped"),
        (lambda d: d.update(decimal_separator=";"), "decimal separator must be '.' or ','"),
        (lambda d: d.update(date_formats=["%Q/%m"]), "date format '%Q/%m'"),
        (lambda d: d.update(date_formats=["%m/%Y"]), "must contain a day, a month and a year"),
        (lambda d: d.update(date_formats=["dd/mm/yyyy"]), "has no % directives"),
        (lambda d: d.update(default_currency="EURO"), "default currency 'EURO'"),
        (lambda d: d.update(expense_type_synonyms={"Parking": "travel"}), "maps to 'travel'"),
        (lambda d: d.update(format="something/else"), "'format' must be"),
        (lambda d: d.update(version=2), "unsupported profile version 2"),
        (lambda d: d.update(extra=True), "unknown profile key 'extra'"),
        (lambda d: d["columns"].update(term="Course"), "mapped to several fields"),
        (lambda d: d.update(columns=["Amount"]), "'columns' must be an object"),
        (lambda d: d.update(sheet=3), "'sheet' must be text or null"),
    ],
)
def test_profile_from_json_dict_when_invalid_raises_specific_problem(change, fragment):
    data = copy.deepcopy(valid_json())
    change(data)
    with pytest.raises(MappingError) as excinfo:
        MappingProfile.from_json_dict(data)
    assert any(fragment in p for p in excinfo.value.problems), excinfo.value.problems


def test_profile_from_json_dict_when_several_problems_lists_all():
    data = valid_json() | {"decimal_separator": "x", "default_currency": "ZZZ"}
    with pytest.raises(MappingError) as excinfo:
        MappingProfile.from_json_dict(data)
    assert len(excinfo.value.problems) == 2


def test_profile_from_json_dict_when_default_customer_set_customer_column_not_required():
    data = valid_json()
    data["columns"].pop("customer_code")
    data["default_customer"] = "ACME"
    assert MappingProfile.from_json_dict(data).default_customer == "ACME"


def test_missing_required_when_columns_empty_lists_required_fields():
    assert missing_required(MappingProfile(columns={})) == [
        "employee_external_id",
        "customer_code",
        "partner_reference",
        "expense_type",
        "amount",
        "service_date",
    ]


def test_profile_covers_when_all_mapped_headers_present_returns_true():
    assert profile().covers(HEADERS + ["Extra"])


def test_profile_covers_when_a_mapped_header_is_missing_returns_false():
    assert not profile().covers([h for h in HEADERS if h != "Amount"])


# ---------------------------------------------------------------- normalize_row


def test_normalize_row_when_valid_returns_normalized_row():
    result = normalize_row(row(), profile())
    assert result == NormalizedRow(
        row_number=7,
        employee_external_id="E1",
        employee_name="Ana",
        customer_code="ACME",
        partner_reference="T-1",
        expense_type="tuition",
        amount_minor=123450,
        currency="USD",
        service_date=dt.date(2026, 1, 15),
        description="Econ 101",
        term="Spring",
    )


def test_normalize_row_when_several_fields_bad_reports_all_problems():
    result = normalize_row(row(Amount="abc", Date_of_Service="2026-02-30", Fee_Type="Parking"), profile())
    assert isinstance(result, list)
    assert {p.field for p in result} == {"amount", "service_date", "expense_type"}
    assert all(isinstance(p, RowProblem) and p.row_number == 7 for p in result)


def test_normalize_row_when_required_field_empty_reports_required():
    result = normalize_row(row(Employee_ID="  "), profile())
    assert result == [RowProblem(7, "employee_external_id", "", "required")]


def test_normalize_row_when_currency_only_in_amount_uses_it():
    result = normalize_row(row(Amount="€12,50", Currency=""), profile(decimal_separator=","))
    assert (result.amount_minor, result.currency) == (1250, "EUR")


def test_normalize_row_when_no_currency_anywhere_uses_profile_default():
    result = normalize_row(row(Currency=""), profile(default_currency="CAD"))
    assert result.currency == "CAD"


def test_normalize_row_when_no_currency_and_no_default_reports_currency_required():
    result = normalize_row(row(Currency=""), profile())
    assert [p.field for p in result] == ["currency"]


def test_normalize_row_when_amount_currency_disagrees_with_column_reports_conflict():
    result = normalize_row(row(Amount="EUR 10.00", Currency="USD"), profile())
    assert [p.field for p in result] == ["currency"]
    assert "EUR" in result[0].message and "USD" in result[0].message


def test_normalize_row_when_currency_has_no_decimals_uses_its_exponent():
    assert normalize_row(row(Amount="1,200", Currency="JPY"), profile()).amount_minor == 1200


def test_normalize_row_when_decimals_exceed_currency_exponent_reports_amount():
    result = normalize_row(row(Amount="1200.50", Currency="JPY"), profile())
    assert [p.field for p in result] == ["amount"]


def test_normalize_row_when_invalid_currency_code_reports_currency_once():
    result = normalize_row(row(Currency="XYZ"), profile())
    assert [p.field for p in result] == ["currency"]


def test_normalize_row_when_customer_column_unmapped_uses_default_customer():
    columns = {k: v for k, v in propose_mapping(HEADERS).items() if k != "customer_code"}
    result = normalize_row(row(), profile(columns=columns, default_customer="GLOBEX"))
    assert result.customer_code == "GLOBEX"


def test_normalize_row_when_text_looks_like_formula_keeps_it_literal():
    result = normalize_row(row(Course="=SUM(A1:A3)"), profile())
    assert result.description == "=SUM(A1:A3)"


@pytest.mark.parametrize(
    ("column", "field", "length"),
    [
        ("Transaction ID", "partner_reference", 101),
        ("Course", "description", 501),
        ("Employee ID", "employee_external_id", 65),
    ],
)
def test_normalize_row_when_text_too_long_reports_length(column, field, length):
    source = row()
    cells = dict(source.cells) | {column: "x" * length}
    result = normalize_row(SourceRow(7, cells), profile())
    assert [p.field for p in result] == [field]
    assert "too long" in result[0].message


def test_normalize_row_when_profile_date_format_used_parses_with_it():
    result = normalize_row(row(Date_of_Service="15/01/2026"), profile(date_formats=["%d/%m/%Y"]))
    assert result.service_date == dt.date(2026, 1, 15)


def test_normalize_row_when_optional_term_empty_gives_none():
    assert normalize_row(row(Term=""), profile()).term is None


# ---------------------------------------------------------------- fingerprint


def test_content_fingerprint_when_only_reference_or_name_differs_is_equal():
    a = normalize_row(row(), profile())
    b = normalize_row(row(Transaction_ID="T-99", Employee_Name="Ana S."), profile())
    assert content_fingerprint(a) == content_fingerprint(b)


def test_content_fingerprint_when_amount_differs_changes():
    a = normalize_row(row(), profile())
    b = normalize_row(row(Amount="1,234.51"), profile())
    assert content_fingerprint(a) != content_fingerprint(b)


def test_content_fingerprint_when_whitespace_differs_is_equal():
    a = normalize_row(row(Course="Econ 101"), profile())
    b = normalize_row(row(Course="Econ   101"), profile())
    assert content_fingerprint(a) == content_fingerprint(b)


def test_content_fingerprint_when_computed_is_sha256_hex():
    fingerprint = content_fingerprint(normalize_row(row(), profile()))
    assert len(fingerprint) == 64 and int(fingerprint, 16) >= 0
