"""Shared types of the format parsers: the Parser protocol, SourceRow, ParsedFile, IngestError.
Also the small helpers every format needs: cell-to-text conversion and the rows after the data
(totals, "End of report", signatures) that are skipped and listed rather than read as line items."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import BinaryIO, Protocol

from portal.ingest import limits

UNSUPPORTED_FORMAT = "This file is not a supported format (CSV, XLSX, JSON, DOCX)."


class IngestError(Exception):
    """A problem with the file as a whole; the message is shown to the uploader as is."""


@dataclass(frozen=True)
class SourceRow:
    """One data row as found in the file, before any interpretation.

    `number` is where a person finds the row when opening the file (CSV line, sheet row,
    JSON array position or JSON Lines line, Word table row); `cells` maps header -> raw text.
    """

    number: int
    cells: dict[str, str]


@dataclass
class ParsedFile:
    """Headers plus a lazy iterator of rows; iterate once, then call close().

    `skipped` lists the rows after the last line item that are not line items (a totals row,
    "End of report", a signature line), once skip_trailing_rows() is on and the rows are read:
    one {"row", "reason", "text"} dict each, so the caller shows them instead of dropping them.
    """

    headers: list[str]
    rows: Iterator[SourceRow]
    format: str = ""
    sheet: str | None = None
    skipped: list[dict] = field(default_factory=list)
    _close: Callable[[], None] | None = None
    _peeked: list[Iterator[SourceRow]] = field(default_factory=list)

    def has_rows(self) -> bool:
        """True when at least one data row exists; peeks without losing the row.

        A header-only file gives False: the caller should report "no line items".
        """
        source = self.rows
        try:
            first = next(source)
        except StopIteration:
            self.rows = iter(())
            return False
        self.rows = itertools.chain([first], source)
        self._peeked.append(source)
        return True

    def skip_trailing_rows(self, key_headers: Collection[str] = ()) -> None:
        """From now on, rows after the last line item that are not line items are skipped and
        listed in `skipped` (see trailer_reason); the same rows before a line item stay rows.

        `key_headers` are the columns that say whom and what a line item is (the employee's ID or
        email, the reference): a trailing row with none of them is not a line item either, and a
        row with two of them always is one. Call before has_rows().
        """
        self._peeked.append(self.rows)  # closed by close(), even if the wrapper never started
        self.rows = _without_trailing_rows(self.rows, self.skipped, tuple(key_headers))

    def close(self) -> None:
        close, self._close = self._close, None
        if close is not None:
            close()
        # Closing a generator runs its finally blocks (detaching wrappers, closing workbooks).
        for rows in (self.rows, *self._peeked):
            closer = getattr(rows, "close", None)
            if closer is not None:
                closer()

    def __enter__(self) -> ParsedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Parser(Protocol):
    """What every format module provides; detect.py picks one from the file content."""

    name: str

    def sniff(self, head: bytes) -> bool: ...

    def open(self, stream: BinaryIO, *, sheet: str | None = None) -> ParsedFile: ...


def cell_text(value: object) -> str:
    """Convert a typed cell value (spreadsheet, JSON) to the text a person would have typed."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # Spreadsheets keep 15 significant digits; formatting with 15 drops binary artifacts
        # such as 0.30000000000000004 while keeping every digit a person could have entered.
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        return _plain_decimal(Decimal(format(value, ".15g")))
    if isinstance(value, Decimal):
        return _plain_decimal(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.isoformat()
    return str(value)


def _plain_decimal(value: Decimal) -> str:
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


_TOTALS_RE = re.compile(r"^\s*(grand\s*total|sub\s*-?\s*total|total)s?\b", re.IGNORECASE)
TOTALS_SEARCH_COLUMNS = 3
# What the first filled cell of a row after the data says, when the row is not a line item.
_TRAILER_PATTERNS = (
    (_TOTALS_RE, "a totals row"),
    (
        re.compile(
            r"^\W*(end\s+of\s+(the\s+)?(report|file|statement|data|list|document|invoice|table)|eof)\b",
            re.IGNORECASE,
        ),
        "an end-of-report line",
    ),
    (
        re.compile(
            r"^\W*(signed|signature|sign-?\s*off|approved|authori[sz]ed|certified|verified|prepared|reviewed)"
            r"(\s+by)?\b",
            re.IGNORECASE,
        ),
        "a signature line",
    ),
    (re.compile(r"^\W*page\s+\d+(\s+of\s+\d+)?\W*$", re.IGNORECASE), "a page footer"),
)
# Trailing candidates held back at most: more in a run are rows of the data, read as such.
MAX_HELD_ROWS = 100


def is_totals_row(values: list[str]) -> bool:
    """A spreadsheet/Word summary row: the first non-empty cell among the first columns says total."""
    for text in values[:TOTALS_SEARCH_COLUMNS]:
        if text.strip():
            return bool(_TOTALS_RE.match(text))
    return False


def trailer_reason(values: list[str]) -> str | None:
    """Why a row, if it comes after the last line item, is not one; None when it may be data.

    A row whose first filled cell (among the first columns) says total, end of report, a signature
    or a page number, or a row of nothing but lines and punctuation ('-----', '________').
    Parsers also use it to read such a row leniently (merged cells, a short row) instead of failing.
    """
    if not any(ch.isalnum() for text in values for ch in text):
        return "an empty row (only lines or punctuation)" if any(v.strip() for v in values) else None
    for text in values[:TOTALS_SEARCH_COLUMNS]:
        if text.strip():
            return next((reason for pattern, reason in _TRAILER_PATTERNS if pattern.match(text)), None)
    return None


def _row_reason(row: SourceRow, key_headers: tuple[str, ...]) -> str | None:
    cells = row.cells
    if not key_headers:
        return trailer_reason(list(cells.values()))
    # A row with two of them filled (an employee and its reference) is a line item, whatever its
    # first cell says; a 'Total' in the employee column fills only one. Decided before the trailer
    # patterns are tried, and as soon as two are found: nearly every row of a file is such a row.
    enough = 2 if len(key_headers) > 1 else 1
    filled = 0
    for header in key_headers:
        value = cells.get(header)
        if value and not value.isspace():
            filled += 1
            if filled == enough:
                return None
    reason = trailer_reason(list(cells.values()))
    if not filled:
        return reason or "no employee and no reference"
    return reason


def _without_trailing_rows(
    rows: Iterator[SourceRow], skipped: list[dict], key_headers: tuple[str, ...]
) -> Iterator[SourceRow]:
    """Pass rows through, holding back the ones that are not line items until a line item follows
    (then they are rows of the data, and their problems are reported) or the file ends (then they
    are listed in `skipped`)."""
    held: list[tuple[SourceRow, str]] = []
    for row in rows:
        reason = _row_reason(row, key_headers)
        if reason is not None and len(held) < MAX_HELD_ROWS:
            held.append((row, reason))
            continue
        for held_row, _ in held:
            yield held_row
        held.clear()
        yield row
    for row, reason in held:
        # dict.fromkeys: a merged Word cell repeats its text once per column.
        text = " | ".join(dict.fromkeys(v.strip() for v in row.cells.values() if v.strip()))
        shown = text[:80] + ("…" if len(text) > 80 else "")
        skipped.append({"row": row.number, "reason": reason, "text": shown})


def clean_headers(raw: list[str], *, column_name: Callable[[int], str]) -> list[str]:
    """Strip header cells, drop trailing empty ones, name empty middle ones, refuse duplicates.

    Duplicate headers would make two columns share one dict key and lose a value silently.
    """
    end = len(raw)
    while end and not raw[end - 1].strip():
        end -= 1
    if end > limits.MAX_COLUMNS:
        raise IngestError(limits.too_many_columns(end))
    headers = [h.strip().lstrip("\ufeff").strip() for h in raw[:end]]
    while headers and not headers[-1]:
        headers.pop()
    check_header_lengths(headers)
    seen: dict[str, int] = {}
    for index, header in enumerate(headers):
        if not header:
            header = headers[index] = f"Column {column_name(index)}"
        key = header.casefold()
        if key in seen:
            raise IngestError(
                f"The header has the column '{header}' twice (columns {column_name(seen[key])} "
                f"and {column_name(index)}); rename one of them."
            )
        seen[key] = index
    return headers


def check_header_lengths(headers: list[str]) -> None:
    """Refuse a column name or a header row longer than the limits (see limits.py)."""
    for header in headers:
        if len(header) > limits.MAX_HEADER_CHARS:
            raise IngestError(limits.header_too_long(header, len(header)))
    total = sum(map(len, headers))
    if total > limits.MAX_HEADER_ROW_CHARS:
        raise IngestError(limits.header_row_too_long(total))


def check_cells(values, row: int | str) -> None:  # type: ignore[no-untyped-def]
    """Refuse a row with a cell longer than limits.MAX_CELL_CHARS, or holding a NUL, naming the row.

    A NUL is never text a person typed, and PostgreSQL cannot store it.
    """
    joined = "".join(values)
    # No cell can be longer than all of them together: one max() saved on nearly every row.
    if len(joined) > limits.MAX_CELL_CHARS and max(map(len, values)) > limits.MAX_CELL_CHARS:
        raise IngestError(limits.cell_too_long(row))
    if "\x00" in joined:
        raise IngestError(f"Row {row} holds a NUL character, which text never contains; is it a binary file?")


def number_column(index: int) -> str:
    return str(index + 1)
