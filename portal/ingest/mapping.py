"""Map a partner file's columns onto the portal's canonical fields and normalize each row.
Holds the header synonyms, the saved MappingProfile format, and row-level validation."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from typing import Any

from portal.ingest.formats.base import SourceRow
from portal.ingest.values import (
    CURRENCY_EXPONENTS,
    EXPENSE_TYPES,
    ValueProblem,
    amount_currency,
    parse_amount,
    parse_currency,
    parse_date,
    parse_expense_type,
    plain_amount,
)

PROFILE_FORMAT = "tuition-portal/mapping-profile"
PROFILE_VERSION = 1

# field -> required?  customer_code and currency have conditional rules, see missing_required().
CANONICAL_FIELDS: dict[str, bool] = {
    "employee_external_id": True,
    "employee_name": False,
    "customer_code": True,
    "partner_reference": True,
    "expense_type": True,
    "amount": True,
    "currency": False,
    "service_date": True,
    "description": False,
    "term": False,
}

# Most specific first: when two headers map to the same field, the earlier synonym wins.
HEADER_SYNONYMS: dict[str, tuple[str, ...]] = {
    "employee_external_id": (
        "Employee External ID", "Employee ID", "Employee #", "Employee Number", "Emp ID", "Emp #",
        "Student ID", "Student #", "Student Number", "Member ID", "Member #", "Participant ID",
        "External ID",
    ),
    "employee_name": (
        "Employee Name", "Student Name", "Member Name", "Participant Name", "Full Name", "Name",
    ),
    "customer_code": (
        "Customer Code", "Employer Code", "Company Code", "Customer ID", "Employer ID", "Employer",
        "Company", "Customer", "Sponsor",
    ),
    "partner_reference": (
        "Partner Reference", "Invoice Line", "Invoice Line ID", "Line ID", "Transaction ID", "Txn ID",
        "Transaction #", "Reference Number", "Reference", "Ref", "Ref #",
    ),
    "expense_type": ("Expense Type", "Fee Type", "Item Type", "Charge Type", "Category", "Type"),
    "amount": ("Amount Due", "Amount", "Charge Amount", "Charge", "Cost", "Total", "Price"),
    "currency": ("Currency Code", "Currency", "Curr", "CCY"),
    "service_date": (
        "Service Date", "Date of Service", "Transaction Date", "Txn Date", "Charge Date", "Date",
    ),
    "description": ("Description", "Course Name", "Course Title", "Course", "Item", "Details"),
    "term": ("Term", "Semester", "Session", "Academic Term"),
}  # fmt: skip

MAX_LENGTHS = {
    "employee_external_id": 64,
    "employee_name": 200,
    "customer_code": 64,
    "partner_reference": 100,
    "description": 500,
    "term": 50,
}

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
}
_NUMBER_WORDS = {"no", "nr", "nbr", "num", "number"}


class MappingError(ValueError):
    """A mapping profile is invalid; `problems` lists every reason, each user-facing."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def header_key(header: str) -> str:
    """Normalize a header for matching: case, spacing, punctuation; '#', 'No.' and 'Nr' mean 'number'."""
    text = header.casefold().replace("#", " number ").replace("&", " and ")
    tokens = ["number" if t in _NUMBER_WORDS else t for t in re.findall(r"[0-9a-z]+", text)]
    return "".join(tokens)


def _header_tokens(header: str) -> list[str]:
    text = header.casefold().replace("#", " number ").replace("&", " and ")
    return ["number" if t in _NUMBER_WORDS else t for t in re.findall(r"[0-9a-z]+", text)]


_SYNONYM_INDEX: dict[str, tuple[str, int]] = {}
for _field, _names in HEADER_SYNONYMS.items():
    for _rank, _name in enumerate(_names):
        _key = header_key(_name)
        if _key in _SYNONYM_INDEX and _SYNONYM_INDEX[_key][0] != _field:
            raise RuntimeError(f"header synonym {_name!r} is listed for two fields")
        _SYNONYM_INDEX.setdefault(_key, (_field, _rank))


def match_header(header: str) -> str | None:
    """The canonical field a header names exactly (after normalization), or None."""
    hit = _SYNONYM_INDEX.get(header_key(header))
    return hit[0] if hit else None


def propose_mapping(headers: Iterable[str]) -> dict[str, str]:
    """Suggest canonical field -> source header; each header used once, the most specific synonym wins.

    Exact (normalized) synonym matches come first; then headers that contain a synonym's words
    ('Tuition Amount (USD)') fill fields still unmapped, if they point at exactly one field.
    This is only a proposal: the uploader confirms it before it becomes a profile.
    """
    headers = list(headers)
    best: dict[str, tuple[int, int, str]] = {}  # field -> (rank, position, header)
    for position, header in enumerate(headers):
        hit = _SYNONYM_INDEX.get(header_key(header))
        if hit:
            fld, rank = hit
            if fld not in best or (rank, position) < best[fld][:2]:
                best[fld] = (rank, position, header)
    proposal = {fld: header for fld, (_, _, header) in best.items()}

    used = set(proposal.values())
    partial: dict[str, tuple[int, int, str]] = {}  # field -> (-words matched, position, header)
    for position, header in enumerate(headers):
        if header in used:
            continue
        tokens = _header_tokens(header)
        matches: dict[str, int] = {}
        for fld, names in HEADER_SYNONYMS.items():
            for name in names:
                words = _header_tokens(name)
                if words and _contains(tokens, words):
                    matches[fld] = max(matches.get(fld, 0), len(words))
        if not matches:
            continue
        top = max(matches.values())
        winners = [fld for fld, n in matches.items() if n == top]
        if len(winners) != 1 or winners[0] in proposal:
            continue
        fld = winners[0]
        if fld not in partial or (-top, position) < partial[fld][:2]:
            partial[fld] = (-top, position, header)
    for fld, (_, _, header) in partial.items():
        proposal[fld] = header
    return {fld: proposal[fld] for fld in CANONICAL_FIELDS if fld in proposal}


def _contains(tokens: list[str], words: list[str]) -> bool:
    n = len(words)
    return any(tokens[i : i + n] == words for i in range(len(tokens) - n + 1))


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

    def to_json_dict(self) -> dict[str, Any]:
        """The stored form:
        {"format": "tuition-portal/mapping-profile", "version": 1,
         "columns": {canonical field: source header}, "date_formats": [strptime formats],
         "decimal_separator": "." or ",", "default_currency": ISO code or null,
         "default_customer": customer code or null, "expense_type_synonyms": {partner wording: type},
         "sheet": sheet name or null}
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
        for fld in missing_required(self):
            problems.append(f"required field '{fld}' is not mapped to a column")
        if self.decimal_separator not in (".", ","):
            problems.append(f"decimal separator must be '.' or ',', not '{self.decimal_separator}'")
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


def missing_required(profile: MappingProfile) -> list[str]:
    """Required canonical fields the profile does not map (customer_code is covered by a default)."""
    missing = []
    for fld, required in CANONICAL_FIELDS.items():
        if not required or fld in profile.columns:
            continue
        if fld == "customer_code" and profile.default_customer:
            continue
        missing.append(fld)
    return missing


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


@dataclass(frozen=True)
class NormalizedRow:
    row_number: int
    employee_external_id: str
    employee_name: str
    customer_code: str
    partner_reference: str
    expense_type: str
    amount_minor: int
    currency: str
    service_date: dt.date
    description: str
    term: str | None


@dataclass(frozen=True)
class RowProblem:
    row_number: int
    field: str
    value: str
    message: str


def normalize_row(row: SourceRow, profile: MappingProfile) -> NormalizedRow | list[RowProblem]:
    """Validate one source row against the profile; returns the row or ALL its problems.

    Text is only stripped, never evaluated: a cell like '=SUM(A1)' stays literal data.
    """
    problems: list[RowProblem] = []

    def raw(fld: str) -> str:
        header = profile.columns.get(fld)
        return (row.cells.get(header) or "").strip() if header else ""

    def problem(fld: str, value: str, message: str) -> None:
        problems.append(RowProblem(row.number, fld, value, message))

    def text(fld: str, *, required: bool, fallback: str | None = None) -> str:
        value = raw(fld) or (fallback or "").strip()
        if required and not value:
            problem(fld, value, "required")
        limit = MAX_LENGTHS.get(fld)
        if limit and len(value) > limit:
            problem(fld, value, f"too long: {len(value)} characters, at most {limit}")
        return value

    employee_id = text("employee_external_id", required=True)
    employee_name = text("employee_name", required=False)
    customer = text("customer_code", required=True, fallback=profile.default_customer)
    reference = text("partner_reference", required=True)
    description = text("description", required=False)
    term = text("term", required=False)

    expense_type = ""
    type_text = raw("expense_type")
    if not type_text:
        problem("expense_type", type_text, "required")
    else:
        try:
            expense_type = parse_expense_type(type_text, profile.expense_type_synonyms)
        except ValueProblem as exc:
            problem("expense_type", type_text, exc.message)

    amount_text = raw("amount")
    column_currency = text_currency = None
    currency_text = raw("currency")
    if currency_text:
        try:
            column_currency = parse_currency(currency_text)
        except ValueProblem as exc:
            problem("currency", currency_text, exc.message)
    amount_ok = bool(amount_text)
    if not amount_text:
        problem("amount", amount_text, "required")
    else:
        try:
            text_currency = amount_currency(amount_text)
        except ValueProblem as exc:
            problem("amount", amount_text, exc.message)
            amount_ok = False
    if column_currency and text_currency and column_currency != text_currency:
        problem(
            "currency",
            currency_text,
            f"the amount says {text_currency} but the currency column says {column_currency}",
        )
    currency = column_currency or text_currency or profile.default_currency or ""
    if not currency and not (currency_text and column_currency is None):
        problem(
            "currency", currency_text, "required: no currency column value, none in the amount, no default"
        )

    amount_minor = 0
    if amount_ok:
        try:
            amount_minor, _ = parse_amount(
                amount_text,
                decimal_separator=profile.decimal_separator,
                currency_exponent=CURRENCY_EXPONENTS.get(currency, 2),
            )
        except ValueProblem as exc:
            problem("amount", amount_text, exc.message)

    service_date = None
    date_text = raw("service_date")
    if not date_text:
        problem("service_date", date_text, "required")
    else:
        try:
            service_date = parse_date(date_text, formats=profile.date_formats)
        except ValueProblem as exc:
            problem("service_date", date_text, exc.message)

    if problems:
        return problems
    assert service_date is not None
    return NormalizedRow(
        row_number=row.number,
        employee_external_id=employee_id,
        employee_name=employee_name,
        customer_code=customer,
        partner_reference=reference,
        expense_type=expense_type,
        amount_minor=amount_minor,
        currency=currency,
        service_date=service_date,
        description=description,
        term=term or None,
    )


def content_fingerprint(row: NormalizedRow) -> str:
    """sha256 of what makes two rows "the same line item" (not the partner reference, not the name).

    Equal fingerprint + equal reference = a resent duplicate; different fingerprint = a conflict.
    Only whitespace is normalized: case differences count as changes, to stay on the safe side.
    """
    return fingerprint_values(
        row.customer_code,
        row.employee_external_id,
        row.expense_type,
        row.amount_minor,
        row.currency,
        row.service_date,
        row.description,
        row.term,
    )


def fingerprint_values(
    customer_code: str,
    employee_external_id: str,
    expense_type: str,
    amount_minor: int,
    currency: str,
    service_date: dt.date,
    description: str | None,
    term: str | None,
) -> str:
    """content_fingerprint() from the values themselves: the sha256 of the compact JSON array
    ["v1", customer, employee, type, amount, currency, date, description, term] (whitespace
    squashed, non-ASCII kept), built by hand with json's own string encoder, byte for byte what
    json.dumps(..., ensure_ascii=False, separators=(",", ":")) gives."""
    payload = (
        '["v1",'
        f"{encode_basestring(' '.join((customer_code or '').split()))},"
        f"{encode_basestring(' '.join((employee_external_id or '').split()))},"
        f"{encode_basestring(expense_type)},"
        f"{int(amount_minor)},"
        f"{encode_basestring(currency)},"
        f'"{service_date.isoformat()}",'
        f"{encode_basestring(' '.join(description.split()) if description else '')},"
        f"{encode_basestring(' '.join(term.split()) if term else '')}]"
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


_ABSENT = object()  # the "header" of an unmapped field: never a key of a row's cells


class RowNormalizer:
    """normalize_row() for the many rows of one file, with the per-profile work done once.

    `values(row)` reads a row whose every value has the common, plain shape (text within its
    limits, a known expense type, currency and date, a plain amount) and returns the normalized
    values as a tuple in NormalizedRow field order after row_number. For anything else it returns
    None and the caller uses normalize_row(), the reference, which reads the row or explains every
    problem. Parsed expense types, currencies and dates are remembered (a file repeats them), in
    bounded caches so that memory stays flat whatever the file size.
    """

    CACHE_LIMIT = 20_000

    def __init__(self, profile: MappingProfile) -> None:
        self.profile = profile
        columns = profile.columns
        self._headers = tuple(
            columns.get(fld) or _ABSENT
            for fld in (
                "employee_external_id",
                "employee_name",
                "customer_code",
                "partner_reference",
                "description",
                "term",
                "expense_type",
                "currency",
                "amount",
                "service_date",
            )
        )
        self._default_customer = (profile.default_customer or "").strip()
        self._default_currency = profile.default_currency or ""
        self._separator = profile.decimal_separator
        self._types: dict[str, str] = {}
        self._currencies: dict[str, str] = {}
        self._dates: dict[str, dt.date | None] = {}

    def __call__(self, row: SourceRow) -> NormalizedRow | list[RowProblem]:
        values = self.values(row)
        if values is None:
            return normalize_row(row, self.profile)
        return NormalizedRow(row.number, *values)

    def values(self, row: SourceRow) -> tuple | None:
        get = row.cells.get
        h_emp, h_name, h_customer, h_ref, h_desc, h_term, h_type, h_cur, h_amount, h_date = self._headers
        employee = (get(h_emp) or "").strip()
        if not employee or len(employee) > 64:
            return None
        name = (get(h_name) or "").strip()
        if len(name) > 200:
            return None
        customer = (get(h_customer) or "").strip() or self._default_customer
        if not customer or len(customer) > 64:
            return None
        reference = (get(h_ref) or "").strip()
        if not reference or len(reference) > 100:
            return None
        description = (get(h_desc) or "").strip()
        if len(description) > 500:
            return None
        term = (get(h_term) or "").strip()
        if len(term) > 50:
            return None

        type_text = (get(h_type) or "").strip()
        expense_type = self._types.get(type_text)
        if expense_type is None:
            try:
                expense_type = parse_expense_type(type_text, self.profile.expense_type_synonyms)
            except ValueProblem:
                expense_type = ""
            self._remember(self._types, type_text, expense_type)
        if not expense_type:
            return None

        currency_text = (get(h_cur) or "").strip()
        if currency_text:
            currency = self._currencies.get(currency_text)
            if currency is None:
                try:
                    currency = parse_currency(currency_text)
                except ValueProblem:
                    currency = ""
                self._remember(self._currencies, currency_text, currency)
            if not currency:
                return None
        else:
            currency = self._default_currency
            if not currency:
                return None

        amount_minor = plain_amount(
            (get(h_amount) or "").strip(),
            decimal_separator=self._separator,
            currency_exponent=CURRENCY_EXPONENTS.get(currency, 2),
        )
        if amount_minor is None:
            return None

        date_text = (get(h_date) or "").strip()
        try:
            service_date = self._dates[date_text]
        except KeyError:
            try:
                service_date = parse_date(date_text, formats=self.profile.date_formats) if date_text else None
            except ValueProblem:
                service_date = None
            self._remember(self._dates, date_text, service_date)
        if service_date is None:
            return None
        return (
            employee,
            name,
            customer,
            reference,
            expense_type,
            amount_minor,
            currency,
            service_date,
            description,
            term or None,
        )

    def _remember(self, cache: dict, key: str, value) -> None:
        if len(cache) < self.CACHE_LIMIT:
            cache[key] = value
