"""The mapping profile: how to read one partner's files (columns, date formats, defaults), its
validation with every problem named, and the JSON format it is saved, exported and imported in."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from portal.core.catalog import CURRENCY_EXPONENTS, EXPENSE_TYPES
from portal.ingest.headers import CANONICAL_FIELDS

PROFILE_FORMAT = "tuition-portal/mapping-profile"
PROFILE_VERSION = 1

_PROFILE_KEYS = {
    "format",
    "version",
    "columns",
    "date_formats",
    "decimal_separator",
    "default_currency",
    "default_customer",
    "expense_type_synonyms",
    "sheet",
    "employee_key",
    "customer_match",
    "amount_unit",
}

# How a row names its employee: by the customer's employee ID, by work email, or by either (the ID
# first, then the email); and whether the customer column holds our customer code or its name.
EMPLOYEE_KEYS = ("external_id", "email", "either")
CUSTOMER_MATCHES = ("code", "name")
# How the amount column counts money: "major" = as people write it (1250.50), "minor" = whole
# minor units of the row's currency (125050 for USD 1250.50, 125050 for JPY 125,050).
AMOUNT_UNITS = ("major", "minor")


class MappingError(ValueError):
    """A mapping profile is invalid; `problems` lists every reason, each user-facing."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class MappingProfile:
    """How to read one partner's files; stored as JSON (see to_json_dict for the format)."""

    columns: dict[str, str]
    date_formats: list[str] = field(default_factory=list)
    decimal_separator: str = "."
    default_currency: str | None = None
    default_customer: str | None = None
    expense_type_synonyms: dict[str, str] = field(default_factory=dict)
    sheet: str | None = None
    amount_unit: str = "major"
    employee_key: str = "external_id"
    customer_match: str = "code"

    def to_json_dict(self) -> dict[str, Any]:
        """The stored form:
        {"format": "tuition-portal/mapping-profile", "version": 1,
         "columns": {canonical field: source header}, "date_formats": [strptime formats],
         "decimal_separator": "." or ",", "default_currency": ISO code or null,
         "default_customer": customer code or null, "expense_type_synonyms": {partner wording: type},
         "sheet": sheet name or null, "employee_key": "external_id" | "email" | "either",
         "customer_match": "code" | "name", "amount_unit": "major" | "minor"}
        A stored profile without "amount_unit" (saved before it existed) reads amounts as "major".
        """
        return {
            "format": PROFILE_FORMAT,
            "version": PROFILE_VERSION,
            "columns": dict(self.columns),
            "date_formats": list(self.date_formats),
            "decimal_separator": self.decimal_separator,
            "default_currency": self.default_currency,
            "default_customer": self.default_customer,
            "expense_type_synonyms": dict(self.expense_type_synonyms),
            "sheet": self.sheet,
            "amount_unit": self.amount_unit,
            "employee_key": self.employee_key,
            "customer_match": self.customer_match,
        }

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> MappingProfile:
        """Build and validate a profile; raises MappingError listing every problem found."""
        if not isinstance(data, Mapping):
            raise MappingError(["the mapping profile must be a JSON object"])
        problems: list[str] = []
        if data.get("format") != PROFILE_FORMAT:
            problems.append(f"'format' must be '{PROFILE_FORMAT}'")
        if data.get("version") != PROFILE_VERSION:
            problems.append(
                f"unsupported profile version {data.get('version')!r}; expected {PROFILE_VERSION}"
            )
        for key in sorted(set(data) - _PROFILE_KEYS):
            problems.append(f"unknown profile key '{key}'")

        columns = data.get("columns")
        if not isinstance(columns, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in columns.items()
        ):
            problems.append("'columns' must be an object of canonical field -> column header")
            columns = {}
        date_formats = data.get("date_formats", [])
        if not isinstance(date_formats, list) or not all(isinstance(f, str) for f in date_formats):
            problems.append("'date_formats' must be a list of strptime formats")
            date_formats = []
        synonyms = data.get("expense_type_synonyms", {})
        if not isinstance(synonyms, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in synonyms.items()
        ):
            problems.append("'expense_type_synonyms' must be an object of partner wording -> expense type")
            synonyms = {}
        optional_text: dict[str, str | None] = {}
        for key in ("default_currency", "default_customer", "sheet"):
            value = data.get(key)
            if value is not None and not isinstance(value, str):
                problems.append(f"'{key}' must be text or null")
                value = None
            optional_text[key] = value
        separator = data.get("decimal_separator", ".")
        amount_unit = data.get("amount_unit", "major")
        choices = {}
        for key, allowed, default in (
            ("employee_key", EMPLOYEE_KEYS, "external_id"),
            ("customer_match", CUSTOMER_MATCHES, "code"),
        ):
            value = data.get(key, default)
            if value not in allowed:
                problems.append(f"'{key}' must be one of {', '.join(allowed)}, not {value!r}")
                value = default
            choices[key] = value

        default_currency = optional_text["default_currency"]
        if default_currency is not None and default_currency.strip().upper() in CURRENCY_EXPONENTS:
            default_currency = default_currency.strip().upper()
        profile = cls(
            columns={k: v.strip() for k, v in columns.items()},
            date_formats=list(date_formats),
            decimal_separator=separator if isinstance(separator, str) else repr(separator),
            default_currency=default_currency,
            default_customer=optional_text["default_customer"],
            expense_type_synonyms=dict(synonyms),
            sheet=optional_text["sheet"],
            amount_unit=amount_unit if isinstance(amount_unit, str) else repr(amount_unit),
            **choices,
        )
        problems.extend(profile.problems())
        if problems:
            raise MappingError(problems)
        return profile

    def problems(self) -> list[str]:
        """Every reason this profile cannot be used; empty when valid."""
        problems: list[str] = []
        for fld in self.columns:
            if fld not in CANONICAL_FIELDS:
                problems.append(
                    f"unknown field '{fld}' in columns; known fields: {', '.join(CANONICAL_FIELDS)}"
                )
        for fld, header in self.columns.items():
            if not header:
                problems.append(f"the column for '{fld}' is empty")
        by_header: dict[str, list[str]] = {}
        for fld, header in self.columns.items():
            by_header.setdefault(header, []).append(fld)
        for header, fields in by_header.items():
            if header and len(fields) > 1:
                problems.append(f"the column '{header}' is mapped to several fields ({', '.join(fields)})")
        employee_missing = [f for f in employee_fields(self.employee_key) if f not in self.columns]
        if employee_missing and not any(f in self.columns for f in employee_fields("either")):
            problems.append(
                "the profile identifies no employee: map 'employee_external_id' (the customer's "
                "employee ID) or 'employee_email' (the work email), and set employee_key to match"
            )
        else:
            for fld in employee_missing:
                problems.append(
                    f"employee_key '{self.employee_key}' needs the field '{fld}' mapped to a column"
                )
        for fld in missing_required(self):
            if fld not in employee_missing:
                problems.append(f"required field '{fld}' is not mapped to a column")
        if self.decimal_separator not in (".", ","):
            problems.append(f"decimal separator must be '.' or ',', not '{self.decimal_separator}'")
        if self.amount_unit not in AMOUNT_UNITS:
            problems.append(
                f"amount unit must be 'major' (1250.50) or 'minor' (125050 cents), not '{self.amount_unit}'"
            )
        for fmt in self.date_formats:
            reason = _date_format_problem(fmt)
            if reason:
                problems.append(f"date format '{fmt}' {reason}")
        if self.default_currency is not None and self.default_currency not in CURRENCY_EXPONENTS:
            problems.append(f"default currency '{self.default_currency}' is not an ISO 4217 currency code")
        if self.default_customer is not None and not self.default_customer.strip():
            problems.append("default customer is empty; use null for none")
        for source, target in self.expense_type_synonyms.items():
            if not source.strip():
                problems.append("an expense type synonym has an empty partner wording")
            if target not in EXPENSE_TYPES:
                problems.append(
                    f"expense type synonym '{source}' maps to '{target}', "
                    f"which is not one of {', '.join(EXPENSE_TYPES)}"
                )
        return problems

    def validate(self) -> None:
        problems = self.problems()
        if problems:
            raise MappingError(problems)

    def covers(self, headers: Iterable[str]) -> bool:
        """True when every mapped source column is present in `headers` (a later file of the same partner)."""
        present = {h.strip() for h in headers}
        return all(header in present for header in self.columns.values())


def employee_fields(employee_key: str) -> tuple[str, ...]:
    """The columns a profile with this employee_key must map: the ID, the email, or both."""
    return {"external_id": ("employee_external_id",), "email": ("employee_email",)}.get(
        employee_key, ("employee_external_id", "employee_email")
    )


def missing_required(profile: MappingProfile) -> list[str]:
    """Required canonical fields the profile does not map (customer_code is covered by a default;
    the employee's ID and/or email as its employee_key says)."""
    missing = []
    for fld, required in CANONICAL_FIELDS.items():
        if not required or fld in profile.columns:
            continue
        if fld == "customer_code" and profile.default_customer:
            continue
        missing.append(fld)
    return [*(f for f in employee_fields(profile.employee_key) if f not in profile.columns), *missing]


# Fields every line item fills: a row after the data with none of them is not a line item.
ROW_KEY_FIELDS = ("employee_external_id", "employee_email", "partner_reference")


def row_key_columns(profile: MappingProfile) -> list[str]:
    """The file's columns for ROW_KEY_FIELDS (see ParsedFile.skip_trailing_rows)."""
    return [profile.columns[fld] for fld in ROW_KEY_FIELDS if fld in profile.columns]


_PROBE_DATE = dt.date(2026, 10, 25)  # day > 12 so that swapped day/month formats cannot round-trip


def _date_format_problem(fmt: str) -> str | None:
    if "%" not in fmt:
        return "has no % directives"
    try:
        # Only the date part is used, so a naive datetime is correct here.
        parsed = dt.datetime.strptime(_PROBE_DATE.strftime(fmt), fmt).date()  # noqa: DTZ007
    except ValueError as exc:
        return f"is not a valid strptime format ({exc})"
    if parsed != _PROBE_DATE:
        return "must contain a day, a month and a year"
    return None
