"""One source row to one normalized line item, or every problem with it: normalize_row() (the
reference), RowNormalizer (its fast path for the plain rows of a big file), and content fingerprints."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from json.encoder import encode_basestring

from portal.core.catalog import CURRENCY_EXPONENTS
from portal.ingest.dates import parse_date
from portal.ingest.formats.base import SourceRow
from portal.ingest.limits import MAX_FIELD_CHARS
from portal.ingest.mapping import MappingProfile
from portal.ingest.values import (
    ValueProblem,
    amount_currency,
    parse_amount,
    parse_currency,
    parse_expense_type,
    parse_minor_amount,
    plain_amount,
    plain_minor_amount,
)


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
    employee_email: str | None = None  # lower-cased; the key when the profile identifies by email


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
        limit = MAX_FIELD_CHARS.get(fld)
        if limit and len(value) > limit:
            problem(fld, value, f"too long: {len(value)} characters, at most {limit}")
        return value

    key = profile.employee_key
    employee_id = text("employee_external_id", required=key == "external_id")
    email_text = text("employee_email", required=key == "email")
    employee_email = None
    if email_text:
        employee_email = work_email(email_text)
        if employee_email is None:
            problem("employee_email", email_text, "not an email address (name@company.example)")
    if key == "either" and not employee_id and not email_text:
        problem("employee_external_id", "", "required: neither an employee ID nor an email is given")
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
            amount_minor = read_amount(amount_text, profile, CURRENCY_EXPONENTS.get(currency, 2))
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
        employee_email=employee_email,
    )


def read_amount(text: str, profile: MappingProfile, currency_exponent: int) -> int:
    """Minor units of an amount cell, read in the profile's amount unit; raises ValueProblem."""
    if profile.amount_unit == "minor":
        return parse_minor_amount(text, currency_exponent=currency_exponent)[0]
    return parse_amount(
        text, decimal_separator=profile.decimal_separator, currency_exponent=currency_exponent
    )[0]


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def work_email(text: str) -> str | None:
    """A learner's work email as we match it (trimmed, lower-cased), or None when it is not one."""
    value = text.strip().lower()
    return value if len(value) <= 254 and _EMAIL.match(value) else None


def employee_key_value(external_id: str | None, email: str | None) -> str:
    """What identifies the employee in a fingerprint: the ID when the row has one, else the email."""
    return external_id or (f"email:{email}" if email else "")


def content_fingerprint(row: NormalizedRow) -> str:
    """sha256 of what makes two rows "the same line item" (not the partner reference, not the name).

    Equal fingerprint + equal reference = a resent duplicate; different fingerprint = a conflict.
    Only whitespace is normalized: case differences count as changes, to stay on the safe side.
    """
    return fingerprint_values(
        row.customer_code,
        employee_key_value(row.employee_external_id, row.employee_email),
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


def _squashed(value: str | None) -> str:
    return encode_basestring(" ".join(value.split()) if value else "")


class Fingerprints:
    """fingerprint_values() for the many rows of one file, byte for byte, with the JSON pieces a
    file repeats encoded once: the customer and employee, the expense type, the currency and date,
    the description and term. The caches are bounded, so memory stays flat whatever the file size.
    """

    CACHE_LIMIT = 20_000

    def __init__(self) -> None:
        self._who: dict[tuple[str, str], str] = {}
        self._types: dict[str, str] = {}
        self._when: dict[tuple[str, dt.date], str] = {}
        self._what: dict[tuple[str | None, str | None], str] = {}

    def __call__(
        self,
        customer_code: str,
        employee_key: str,
        expense_type: str,
        amount_minor: int,
        currency: str,
        service_date: dt.date,
        description: str | None,
        term: str | None,
    ) -> str:
        who = self._who.get((customer_code, employee_key))
        if who is None:
            who = f'["v1",{_squashed(customer_code)},{_squashed(employee_key)},'
            self._remember(self._who, (customer_code, employee_key), who)
        kind = self._types.get(expense_type)
        if kind is None:
            kind = self._types[expense_type] = f"{encode_basestring(expense_type)},"  # a handful
        when = self._when.get((currency, service_date))
        if when is None:
            when = f',{encode_basestring(currency)},"{service_date.isoformat()}",'
            self._remember(self._when, (currency, service_date), when)
        what = self._what.get((description, term))
        if what is None:
            what = f"{_squashed(description)},{_squashed(term)}]"
            self._remember(self._what, (description, term), what)
        payload = f"{who}{kind}{int(amount_minor)}{when}{what}"
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def _remember(self, cache: dict, key, value: str) -> None:
        if len(cache) < self.CACHE_LIMIT:
            cache[key] = value


_ABSENT = object()  # the "header" of an unmapped field: never a key of a row's cells


class RowNormalizer:
    """normalize_row() for the many rows of one file, with the per-profile work done once.

    `values(row)` reads a row whose every value has the common, plain shape (text within its
    limits, a known expense type, currency and date, a plain amount) and returns the normalized
    values as a tuple in NormalizedRow field order after row_number (the email last). For anything
    else it returns
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
        self._max_chars = tuple(
            MAX_FIELD_CHARS[fld]
            for fld in (
                "employee_external_id",
                "employee_name",
                "customer_code",
                "partner_reference",
                "description",
                "term",
            )
        )
        # Profiles that identify employees by email go through normalize_row (the reference).
        self._by_id_only = profile.employee_key == "external_id"
        self._h_email = columns.get("employee_email") or _ABSENT
        self._default_customer = (profile.default_customer or "").strip()
        self._default_currency = profile.default_currency or ""
        self._separator = profile.decimal_separator
        self._minor_units = profile.amount_unit == "minor"
        self._types: dict[str, str] = {}
        self._currencies: dict[str, str] = {}
        self._dates: dict[str, dt.date | None] = {}

    def __call__(self, row: SourceRow) -> NormalizedRow | list[RowProblem]:
        values = self.values(row)
        if values is None:
            return normalize_row(row, self.profile)
        return NormalizedRow(row.number, *values[:10], employee_email=values[10])

    def values(self, row: SourceRow) -> tuple | None:
        get = row.cells.get
        max_employee, max_name, max_customer, max_reference, max_description, max_term = self._max_chars
        h_emp, h_name, h_customer, h_ref, h_desc, h_term, h_type, h_cur, h_amount, h_date = self._headers
        if not self._by_id_only:
            return None
        employee = (get(h_emp) or "").strip()
        if not employee or len(employee) > max_employee:
            return None
        email_text = (get(self._h_email) or "").strip()
        email = work_email(email_text) if email_text else None
        if email_text and email is None:
            return None
        name = (get(h_name) or "").strip()
        if len(name) > max_name:
            return None
        customer = (get(h_customer) or "").strip() or self._default_customer
        if not customer or len(customer) > max_customer:
            return None
        reference = (get(h_ref) or "").strip()
        if not reference or len(reference) > max_reference:
            return None
        description = (get(h_desc) or "").strip()
        if len(description) > max_description:
            return None
        term = (get(h_term) or "").strip()
        if len(term) > max_term:
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

        amount_text = (get(h_amount) or "").strip()
        if self._minor_units:
            amount_minor = plain_minor_amount(amount_text)
        else:
            amount_minor = plain_amount(
                amount_text,
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
            email,
        )

    def _remember(self, cache: dict, key: str, value) -> None:
        if len(cache) < self.CACHE_LIMIT:
            cache[key] = value
