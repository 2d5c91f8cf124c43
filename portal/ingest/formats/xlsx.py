"""Parser for Excel workbooks (.xlsx) via openpyxl in read-only mode, streamed row by row.
Finds the header row below title rows, skips blank rows, converts cells to exact text."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from typing import BinaryIO

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from portal.ingest import safety
from portal.ingest.formats.base import (
    IngestError,
    ParsedFile,
    SourceRow,
    cell_text,
    check_cells,
    clean_headers,
    trailer_reason,
)
from portal.ingest.headers import match_header

HEADER_SEARCH_ROWS = 50


def _column_name(index: int) -> str:
    return get_column_letter(index + 1)


def find_header(rows: list[tuple[int, list[str]]]) -> tuple[int, list[str]] | None:
    """The header among the first rows: >= 2 text cells including a known synonym; else >= 3 text cells."""
    for number, values in rows:
        texts = [v for v in values if v.strip() and not _is_number(v)]
        if len(texts) >= 2 and any(match_header(v) for v in texts):
            return number, values
    for number, values in rows:
        if sum(1 for v in values if v.strip() and not _is_number(v)) >= 3:
            return number, values
    return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class XlsxParser:
    name = "xlsx"

    def __init__(self, *, max_uncompressed: int = safety.MAX_UNCOMPRESSED_BYTES) -> None:
        self.max_uncompressed = max_uncompressed

    def sniff(self, head: bytes) -> bool:
        # Only a hint from the local file headers in the first bytes; detect.py lists the members.
        return head.startswith(b"PK\x03\x04") and b"xl/" in head

    def open(self, stream: BinaryIO, *, sheet: str | None = None) -> ParsedFile:
        safety.check_zip(stream, max_uncompressed=self.max_uncompressed)
        safety.check_xml_parts(stream, parse_parts=("[Content_Types].xml", "xl/workbook.xml"))
        try:
            workbook = load_workbook(stream, read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, ValueError, OSError, TypeError) as exc:
            raise IngestError(f"Could not open the Excel workbook: {exc}.") from exc
        except Exception as exc:  # a damaged package makes openpyxl fail in its own ways
            raise IngestError(
                f"Could not open the Excel workbook: it is damaged ({type(exc).__name__}: {exc})."
            ) from exc
        try:
            worksheet = self._pick_sheet(workbook, sheet)
            # Writers sometimes record a wrong <dimension>; trusting it would silently cut rows off.
            worksheet.reset_dimensions()
            rows = self._raw_rows(worksheet)
            head: list[tuple[int, list[str]]] = []
            for item in rows:
                head.append(item)
                if len(head) >= HEADER_SEARCH_ROWS:
                    break
            found = find_header(head)
            if found is None:
                raise IngestError(
                    f"Could not find the header row in sheet '{worksheet.title}': expected a row of column "
                    f"names (such as 'Employee ID', 'Amount') within the first {HEADER_SEARCH_ROWS} rows."
                )
            header_number, raw_header = found
            headers = clean_headers(raw_header, column_name=_column_name)
            after_header = [item for item in head if item[0] > header_number]
        except BaseException:
            workbook.close()
            raise
        parsed = ParsedFile(headers=headers, rows=iter(()), format=self.name, sheet=worksheet.title)
        parsed.rows = self._data_rows(workbook, headers, after_header, rows)
        return parsed

    @staticmethod
    def _pick_sheet(workbook, sheet: str | None):  # type: ignore[no-untyped-def]
        if sheet is None:
            if not workbook.worksheets:
                raise IngestError("The workbook has no worksheets.")
            return workbook.worksheets[0]
        names = [ws.title for ws in workbook.worksheets]
        if sheet not in names:
            raise IngestError(f"The workbook has no sheet named '{sheet}'. Sheets: {', '.join(names)}.")
        return workbook[sheet]

    @staticmethod
    def _raw_rows(worksheet) -> Iterator[tuple[int, list[str]]]:  # type: ignore[no-untyped-def]
        for number, values in enumerate(worksheet.iter_rows(min_row=1, values_only=True), start=1):
            yield number, [cell_text(v) for v in values]

    @staticmethod
    def _data_rows(
        workbook,  # type: ignore[no-untyped-def]
        headers: list[str],
        buffered: list[tuple[int, list[str]]],
        rest: Iterator[tuple[int, list[str]]],
    ) -> Iterator[SourceRow]:
        try:
            for source in (buffered, rest):
                for number, values in source:
                    if not any(v.strip() for v in values):
                        continue
                    check_cells(values, number)
                    extra = [i for i in range(len(headers), len(values)) if values[i].strip()]
                    # A totals or signature row often runs past the header; it is read as far as
                    # the header goes, and skipped if it comes after the data (ParsedFile).
                    if extra and trailer_reason(values) is None:
                        raise IngestError(
                            f"Row {number} has a value in column {_column_name(extra[0])}, "
                            "which has no header."
                        )
                    cells = values[: len(headers)] + [""] * (len(headers) - len(values))
                    yield SourceRow(number=number, cells=dict(zip(headers, cells, strict=True)))
        finally:
            workbook.close()


PARSER = XlsxParser()
