"""Parser for line items in a Word document (.docx) table, via python-docx.
Picks the table whose first row looks like a header (else the largest table); skips blank rows."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from typing import BinaryIO

import docx
from docx.opc.exceptions import PackageNotFoundError

from portal.ingest import safety
from portal.ingest.formats.base import (
    IngestError,
    ParsedFile,
    SourceRow,
    check_cells,
    clean_headers,
    number_column,
    trailer_reason,
)
from portal.ingest.headers import match_header

# python-docx loads the whole document; the zip-size limit in safety.py bounds that memory.


def _row_texts(row) -> list[str]:  # type: ignore[no-untyped-def]
    return [cell.text for cell in row.cells]


def _has_merged_cells(row) -> bool:  # type: ignore[no-untyped-def]
    # python-docx repeats a horizontally merged cell once per grid column it spans.
    elements = [cell._tc for cell in row.cells]
    return len({id(e) for e in elements}) != len(elements)


def _unmerged_texts(row) -> list[str]:  # type: ignore[no-untyped-def]
    """Cell texts with a merged cell's text in its first column only (it is one cell, not many)."""
    seen: set[int] = set()
    texts = []
    for cell in row.cells:
        texts.append("" if id(cell._tc) in seen else cell.text)
        seen.add(id(cell._tc))
    return texts


def pick_table(tables: list) -> object | None:  # type: ignore[type-arg]
    """First table whose first row has >= 2 known header names; else the largest table."""
    for table in tables:
        if not table.rows:
            continue
        header = _row_texts(table.rows[0])
        if sum(1 for text in header if match_header(text)) >= 2:
            return table
    sized = [(len(t.rows) * len(t.columns), i) for i, t in enumerate(tables) if t.rows]
    if not sized:
        return None
    return tables[max(sized, key=lambda s: (s[0], -s[1]))[1]]


class DocxParser:
    name = "docx"

    def __init__(self, *, max_uncompressed: int = safety.MAX_UNCOMPRESSED_BYTES) -> None:
        self.max_uncompressed = max_uncompressed

    def sniff(self, head: bytes) -> bool:
        # Only a hint from the local file headers in the first bytes; detect.py lists the members.
        return head.startswith(b"PK\x03\x04") and b"word/" in head

    def open(self, stream: BinaryIO, *, sheet: str | None = None) -> ParsedFile:
        """`sheet` is ignored: a document's line items live in one table."""
        safety.check_zip(stream, max_uncompressed=self.max_uncompressed)
        safety.check_xml_parts(stream, parse_parts=("[Content_Types].xml", "word/document.xml"))
        try:
            document = docx.Document(stream)
        except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
            raise IngestError(f"Could not open the Word document: {exc}.") from exc
        except Exception as exc:  # a damaged package makes python-docx fail in its own ways
            raise IngestError(
                f"Could not open the Word document: it is damaged ({type(exc).__name__}: {exc})."
            ) from exc
        table = pick_table(list(document.tables))
        if table is None:
            raise IngestError("The Word document has no table of line items.")
        header_row = table.rows[0]  # type: ignore[attr-defined]
        if _has_merged_cells(header_row):
            raise IngestError("Row 1 of the table (the header) has merged cells; unmerge them.")
        headers = clean_headers(_row_texts(header_row), column_name=number_column)
        parsed = ParsedFile(headers=headers, rows=iter(()), format=self.name)
        parsed.rows = self._rows(table, headers)
        return parsed

    @staticmethod
    def _rows(table, headers: list[str]) -> Iterator[SourceRow]:  # type: ignore[no-untyped-def]
        for index, row in enumerate(table.rows):
            if index == 0:
                continue
            number = index + 1
            values = _row_texts(row)
            if not any(v.strip() for v in values):
                continue
            # A totals or signature row is often merged across columns; it is read as it is, and
            # skipped if it comes after the data (ParsedFile.skip_trailing_rows).
            lenient = trailer_reason(values) is not None
            if _has_merged_cells(row) and not lenient:
                raise IngestError(f"Row {number} of the table has merged cells; unmerge them.")
            check_cells(values, number)
            extra = [i for i in range(len(headers), len(values)) if values[i].strip()]
            if (extra or len(values) < len(headers)) and not lenient:
                raise IngestError(
                    f"Row {number} of the table has {len(values)} columns but the header has {len(headers)}."
                )
            if lenient:
                values = _unmerged_texts(row)
            cells = values[: len(headers)] + [""] * (len(headers) - len(values))
            yield SourceRow(number=number, cells=dict(zip(headers, cells, strict=True)))


PARSER = DocxParser()
