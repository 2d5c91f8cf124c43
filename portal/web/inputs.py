"""The one input layer: ids in URLs, integers, dates and periods in query strings, text without NUL.

Every route reads its ids, page numbers, dates and periods through here, so a value the database
cannot hold (an id past PostgreSQL's integer, a page past int64, the year 9999 plus a day, a NUL)
is answered 404 or 400 with a clear message instead of reaching a query and answering 500.
"""

from __future__ import annotations

import datetime as dt

from flask import Flask, request
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from werkzeug.routing import IntegerConverter

from portal.errors import error_response
from portal.invoicing.periods import Period

# PostgreSQL `integer` (every primary key but the audit chain's `seq`, which is `bigint`).
MAX_ID = 2**31 - 1
MAX_SEQ = 2**63 - 1
# Page numbers: whole numbers up to MAX_ID, so page x page size stays inside a 64-bit OFFSET.
MAX_PAGE = MAX_ID
# Years people mean in this business; outside them a date is a typo or a probe (9999-12-31 + 1 day
# overflows Python's date).
MIN_YEAR, MAX_YEAR = 1900, 2999
NUL_MESSAGE = "The request contains a NUL character, which no field accepts."


class InputError(BadRequest):
    """A query-string or form value we refuse; answered 400 with `description` shown to the user."""


class IdConverter(IntegerConverter):
    """`<id:invoice_id>`: a database id, 1 to 2^31-1. Anything else does not match, so it answers
    404 exactly like an id that names no object."""

    def __init__(self, map, max: int = MAX_ID) -> None:  # noqa: A002 (werkzeug's argument name)
        super().__init__(map, min=1, max=max)


def parse_id(text: str | None, *, maximum: int = MAX_ID) -> int | None:
    """An id written in a form or query string: the integer, or None if it is not one we could hold."""
    text = (text or "").strip()
    if not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if 1 <= value <= maximum else None


def int_arg(name: str, default: int | None = None, *, minimum: int = 1, maximum: int = MAX_ID):
    """The query-string integer `name` (missing or empty: `default`).

    Not a whole number, or outside minimum..maximum: 400 naming the parameter and the range.
    """
    text = (request.args.get(name) or "").strip()
    if not text:
        return default
    digits = text[1:] if text[:1] in "+-" else text
    if digits.isascii() and digits.isdigit() and len(digits) <= 20:
        value = int(text)
        if minimum <= value <= maximum:
            return value
    raise InputError(f"“{name}” must be a whole number from {minimum:,} to {maximum:,}.")


def page_arg(name: str = "page") -> int:
    """A page number, 1 when absent; 400 when it is not a whole number from 1 to MAX_PAGE.

    A page past the last one is allowed here: pages that know their count show the last page."""
    return int_arg(name, 1, minimum=1, maximum=MAX_PAGE)


def id_arg(name: str) -> int | None:
    """An optional id in the query string (a filter): None when absent, 400 when not a valid id."""
    return int_arg(name, None, minimum=1, maximum=MAX_ID)


def parse_date(text: str, *, label: str = "date") -> dt.date:
    """An ISO date (YYYY-MM-DD) from MIN_YEAR to MAX_YEAR; otherwise InputError saying so."""
    try:
        value = dt.date.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"The {label} “{text}” is not a date; write it as YYYY-MM-DD.") from None
    check_year(value.year, label=label)
    return value


def check_year(year: int, *, label: str = "date") -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise InputError(f"The {label} must be in the years {MIN_YEAR} to {MAX_YEAR}.")


def date_arg(name: str, *, label: str | None = None) -> dt.date | None:
    """An optional query-string date: None when absent or empty, 400 when not a date we accept."""
    text = (request.args.get(name) or "").strip()
    return parse_date(text, label=label or f"date “{name}”") if text else None


def parse_period(text: str):
    """A billing period (YYYY-MM) from MIN_YEAR to MAX_YEAR; otherwise InputError with the reason."""
    text = text.strip()
    if len(text) >= 4 and text[:4].isascii() and text[:4].isdigit():
        check_year(int(text[:4]), label="period")
    try:
        return Period.parse(text)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def contains_nul(values) -> bool:
    return any("\x00" in value for value in values if isinstance(value, str))


def refuse_nul() -> None:
    """Before every request: a NUL in the path, a query-string or form key or value, or an uploaded
    file's name is refused (400). PostgreSQL text cannot hold one, and no field has a use for it."""
    if "\x00" in request.path:
        raise InputError(NUL_MESSAGE)
    if contains_nul(request.args.keys()) or contains_nul(
        v for values in request.args.listvalues() for v in values
    ):
        raise InputError(NUL_MESSAGE)
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    try:
        form, files = request.form, request.files
    except RequestEntityTooLarge:
        return  # the view answers that one with the upload form and the size limit
    if (
        contains_nul(form.keys())
        or contains_nul(v for values in form.listvalues() for v in values)
        or contains_nul(f.filename for f in files.values())
    ):
        raise InputError(NUL_MESSAGE)


def init_app(app: Flask) -> None:
    """Register `<id:...>` (before any blueprint adds its rules), the NUL check and the 400 page."""
    app.url_map.converters["id"] = IdConverter
    app.before_request(refuse_nul)

    @app.errorhandler(InputError)
    def input_error(exc: InputError):
        return error_response(400, exc.description)
