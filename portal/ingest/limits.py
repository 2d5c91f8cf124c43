"""Every size limit on an uploaded file's content, in one place, with the message a partner reads.
A file over a limit fails its upload at once with what was too big; nothing here imports a parser."""

from __future__ import annotations

# The header row: one column per field we map, plus what partners send beside them. The mapping page
# offers every column in each of its selects, so the column count is what bounds that page.
MAX_COLUMNS = 200
MAX_HEADER_CHARS = 200  # one column name
MAX_HEADER_ROW_CHARS = 20_000  # the whole header row, as text

# One cell. csv's default of 128 KB per field would let one unbalanced quote swallow much of a file
# before failing; a real cell (a course name, a description) is far shorter.
MAX_CELL_CHARS = 32 * 1024

# JSON: a line item is a flat object in an array (or one per line), so any nested value is refused
# naming its row. Nesting deeper than the decoder's recursion limit (about 1,000 levels) stops the
# decoder itself (RecursionError), reported as nested_too_deep(). A separate depth scan before
# decoding was measured at three times the cost of decoding a 44 MB array, for no stricter result.
# A JSON array is loaded whole (the stdlib has no streaming parser); this bounds the memory used.
MAX_JSON_ARRAY_BYTES = 50 * 1024 * 1024
MAX_JSON_LINE_CHARS = 1024 * 1024

# Zip-based documents (XLSX, DOCX), checked before any library opens them.
MAX_UNCOMPRESSED_BYTES = 200 * 1024 * 1024
MAX_COMPRESSION_RATIO = 100
# Tiny members (styles, rels) legitimately compress very well; they cannot be bombs, so the ratio
# rule only applies from this size up.
RATIO_MIN_BYTES = 1024 * 1024
MAX_ZIP_MEMBERS = 10_000


# The longest text each field of a line item may hold (the upload_rows and line_items columns);
# a longer value is a problem of its row, not of the file.
MAX_FIELD_CHARS = {
    "employee_external_id": 64,
    "employee_email": 254,
    "employee_name": 200,
    "customer_code": 64,
    "partner_reference": 100,
    "description": 500,
    "term": 50,
}


def too_many_columns(count: int, *, at_least: bool = False) -> str:
    return (
        f"The file has {'at least ' if at_least else ''}{count:,} columns; at most {MAX_COLUMNS} are read. "
        "Remove the columns that are not needed and upload it again."
    )


def header_too_long(column: str, length: int) -> str:
    return (
        f"The column name '{column[:40]}…' is {length:,} characters long; a column name may have at most "
        f"{MAX_HEADER_CHARS}. Is the first row really the header?"
    )


def header_row_too_long(length: int, *, at_least: bool = False) -> str:
    return (
        f"The header row is {'more than ' if at_least else ''}{length:,} characters long; at most "
        f"{MAX_HEADER_ROW_CHARS:,} are read. Is the first row really the header?"
    )


def cell_too_long(row: int | str) -> str:
    return (
        f"Row {row} has a cell longer than {MAX_CELL_CHARS:,} characters (often an unbalanced quote); "
        "no cell may be longer."
    )


def nested_too_deep(where: str) -> str:
    return (
        f"{where} is nested too deeply to read; only an array of flat objects (or one flat object per "
        "line) is read, with no value nested inside another."
    )
