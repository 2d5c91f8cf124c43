"""Parser for delimited text (CSV, semicolon, tab, pipe), streamed row by row.
Encoding and delimiter are decided from a head sample; every later surprise is an error naming the row."""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
from collections.abc import Iterator
from typing import BinaryIO

from charset_normalizer import from_bytes
from charset_normalizer.utils import is_multi_byte_encoding

from portal.ingest import limits
from portal.ingest.formats.base import (
    IngestError,
    ParsedFile,
    SourceRow,
    check_cells,
    clean_headers,
    number_column,
    trailer_reason,
)

HEAD_BYTES = 64 * 1024
DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
SNIFF_RECORDS = 50
MAX_FIELD_CHARS = limits.MAX_CELL_CHARS
# How far a too-wide header is read to count its columns for the message.
HEADER_COUNT_MAX_BYTES = 64 * 1024 * 1024

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def detect_encoding(head: bytes) -> str:
    """Pick the text encoding from the first bytes: BOM, else UTF-8, else a detected legacy encoding.

    UTF-8 is tried first because it almost never decodes text that is not UTF-8. Single-byte
    western text is read as cp1252 (a superset of Latin-1's printable range, with '€'), because
    statistical detectors often mislabel short Western European samples.
    """
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding
    bomless_utf16 = _bomless_utf16(head)
    if bomless_utf16:
        return bomless_utf16
    try:
        # The sample may end inside a multi-byte character: decode incrementally, not final.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    best = from_bytes(head).best()
    # The detector is unreliable on short samples (it calls 'Café;€5' UTF-16), so a multi-byte
    # guess is only believed when the bytes look double-byte: non-ASCII bytes arriving in runs.
    if (
        best is not None
        and is_multi_byte_encoding(best.encoding)
        and not best.encoding.startswith(("utf_16", "utf_32"))
        and _paired_high_bytes(head) > 0.5
    ):
        return best.encoding
    try:
        head.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        pass
    if best is not None:
        return best.encoding
    raise IngestError("Could not decode the file as text: the encoding is not recognised; save it as UTF-8.")


def _paired_high_bytes(data: bytes) -> float:
    """Share of non-ASCII bytes that sit next to another non-ASCII byte (CJK: ~1, Western: ~0)."""
    high = paired = 0
    for index, byte in enumerate(data):
        if byte >= 0x80:
            high += 1
            if (index and data[index - 1] >= 0x80) or (index + 1 < len(data) and data[index + 1] >= 0x80):
                paired += 1
    return paired / high if high else 0.0


def _bomless_utf16(head: bytes) -> str | None:
    """UTF-16 without BOM: ASCII-range text has a NUL in every other byte."""
    sample = head[:4096]
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) > 0.9 * len(odd) and even.count(0) == 0:
        return "utf-16-le"
    if even.count(0) > 0.9 * len(even) and odd.count(0) == 0:
        return "utf-16-be"
    return None


def _sniff_delimiter(sample: str, *, complete: bool) -> str:
    """Choose the delimiter whose parse gives a multi-column header and consistent rows.

    The last sampled record is ignored unless the sample is the whole file: it may be cut off.
    """
    scores = []
    for delimiter in DELIMITERS:
        records = [r for r in _sample_records(sample, delimiter) if any(c.strip() for c in r)]
        if not complete and len(records) > 1:
            records = records[:-1]
        if not records:
            continue
        width = len(_trim(records[0]))
        if width < 2:
            continue
        # A short 'Total' or 'End of report' row after the data does not make a delimiter wrong.
        consistent = all(len(_trim(r)) == width for r in records[1:] if trailer_reason(r) is None)
        scores.append((consistent, width, delimiter))
    if not scores:
        return ","
    consistent = [s for s in scores if s[0]]
    if len(consistent) == 1:
        return consistent[0][2]
    if len(consistent) > 1:
        consistent.sort(reverse=True)
        if consistent[0][1] == consistent[1][1]:
            names = " or ".join(_DELIMITER_NAMES[s[2]] for s in consistent if s[1] == consistent[0][1])
            raise IngestError(
                f"Could not tell which character separates the columns ({names}); "
                "save the file with one clear separator."
            )
        return consistent[0][2]
    # No delimiter gives consistent rows: use the one that splits the header most, so that the
    # row-by-row check reports exactly which row is inconsistent.
    return max(scores, key=lambda s: s[1])[2]


def _sample_records(sample: str, delimiter: str) -> list[list[str]]:
    reader = csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter)
    records = []
    try:
        for record in reader:
            records.append(record)
            if len(records) >= SNIFF_RECORDS:
                break
    except csv.Error:
        pass
    return records


def _check_header_size(
    sample: str, delimiter: str, *, complete: bool, stream: BinaryIO, encoding: str
) -> None:
    """Refuse a header row that does not end within the head sample, before the reader takes it whole.

    A header within the limits (limits.MAX_HEADER_ROW_CHARS of names, limits.MAX_COLUMNS columns)
    always ends well inside the sample; one that does not would otherwise be read in full (a 10 MB
    line of a million columns) before its columns could be counted.
    """
    if complete:
        return
    consumed = 0

    def lines() -> Iterator[str]:
        nonlocal consumed
        for line in io.StringIO(sample, newline=""):
            consumed += len(line)
            yield line

    reader = csv.reader(lines(), delimiter=delimiter)
    record: list[str] = []
    try:
        for record in reader:
            if any(cell.strip() for cell in record):
                break
    except csv.Error:
        record = []
    if consumed < len(sample):
        return  # the header ended inside the sample: clean_headers() checks it exactly
    columns = len(record) if record else sample.count(delimiter) + 1
    if columns > limits.MAX_COLUMNS:
        exact = _count_first_line_columns(stream, delimiter, encoding)
        raise IngestError(limits.too_many_columns(exact or columns, at_least=exact is None))
    raise IngestError(limits.header_row_too_long(len(sample), at_least=True))


def _count_first_line_columns(stream: BinaryIO, delimiter: str, encoding: str) -> int | None:
    """The first line's column count, for the message, when it is plain (no quotes, ASCII-compatible).

    Counts bytes in chunks, so a 10 MB header of a million columns costs milliseconds, not a
    million strings; the stream's position is restored.
    """
    if not codecs.lookup(encoding).name.startswith(("utf-8", "cp", "iso8859", "latin", "ascii")):
        return None
    start = stream.tell()
    separator, count = delimiter.encode("ascii"), 1
    try:
        for _ in range(HEADER_COUNT_MAX_BYTES // HEAD_BYTES):
            chunk = stream.read(HEAD_BYTES)
            if not chunk:
                return count
            line, newline, _rest = chunk.partition(b"\n")
            if b'"' in line:
                return None
            count += line.count(separator)
            if newline:
                return count
        return None
    finally:
        stream.seek(start)


def _trim(record: list[str]) -> list[str]:
    end = len(record)
    while end and not record[end - 1].strip():
        end -= 1
    return record[:end]


class DelimitedParser:
    name = "csv"

    def sniff(self, head: bytes) -> bool:
        """Delimited text is the fallback format: anything that decodes as text."""
        try:
            encoding = detect_encoding(head)
            codecs.getincrementaldecoder(encoding)().decode(head, final=False)
        except (IngestError, UnicodeDecodeError, LookupError):
            return False
        return True

    def open(self, stream: BinaryIO, *, sheet: str | None = None) -> ParsedFile:
        """Parse from the stream's current position; the stream must be seekable. `sheet` is ignored."""
        start = stream.tell()
        head = stream.read(HEAD_BYTES)
        complete = len(head) < HEAD_BYTES
        stream.seek(start)
        if not head.strip():
            raise IngestError("The file is empty.")
        encoding = detect_encoding(head)
        try:
            sample = codecs.getincrementaldecoder(encoding)().decode(head, final=complete)
        except UnicodeDecodeError as exc:
            raise IngestError(f"Could not decode the file as text ({encoding}): {exc.reason}.") from exc
        delimiter = _sniff_delimiter(sample.lstrip("\ufeff"), complete=complete)
        _check_header_size(
            sample.lstrip("\ufeff"), delimiter, complete=complete, stream=stream, encoding=encoding
        )

        text = io.TextIOWrapper(stream, encoding=encoding, errors="strict", newline="")
        reader = csv.reader(text, delimiter=delimiter, strict=True)
        state = _ReaderState(reader)
        try:
            header_line, raw_header = state.next_record()
        except BaseException:
            text.detach()
            raise
        if raw_header is None:
            text.detach()
            raise IngestError("The file is empty.")
        headers = clean_headers(raw_header, column_name=number_column)
        return ParsedFile(
            headers=headers,
            rows=self._rows(state, text, headers),
            format=self.name,
        )

    def _rows(self, state: _ReaderState, text: io.TextIOWrapper, headers: list[str]) -> Iterator[SourceRow]:
        try:
            while True:
                line, record = state.next_record()
                if record is None:
                    return
                cells = _trim(record) if len(record) > len(headers) else record
                if len(cells) != len(headers) and trailer_reason(record) is not None:
                    # 'Total,,,1279.49' or 'End of report' on its own: read as far as the header
                    # goes, and skipped if it comes after the data (ParsedFile.skip_trailing_rows).
                    cells = (cells + [""] * len(headers))[: len(headers)]
                if len(cells) != len(headers):
                    raise IngestError(
                        f"Row {line} has {len(record)} columns but the header has {len(headers)} "
                        "(inconsistent columns)."
                    )
                yield SourceRow(number=line, cells=dict(zip(headers, cells, strict=True)))
        finally:
            # Detach so that closing/collecting the wrapper does not close the caller's stream.
            with contextlib.suppress(ValueError):  # already detached
                text.detach()


class _ReaderState:
    """Wraps csv.reader to report physical line numbers and turn low-level errors into row errors."""

    def __init__(self, reader: Iterator[list[str]]) -> None:
        self.reader = reader

    def next_record(self) -> tuple[int, list[str] | None]:
        previous = self.reader.line_num  # type: ignore[attr-defined]
        while True:
            try:
                record = next(self.reader)
            except StopIteration:
                return previous + 1, None
            except UnicodeDecodeError as exc:
                line = self._bad_line(exc)
                raise IngestError(
                    f"Could not decode the file as text at row {line} (line {line}): {exc.reason}; "
                    "the file mixes encodings, save it as UTF-8."
                ) from exc
            except csv.Error as exc:
                raise IngestError(f"Row {previous + 1} could not be read: {exc}.") from exc
            check_cells(record, previous + 1)
            if any(map(str.strip, record)):
                return previous + 1, record
            previous = self.reader.line_num  # type: ignore[attr-defined]

    def _bad_line(self, exc: UnicodeDecodeError) -> int:
        # The text wrapper decodes a whole chunk at a time and only asks for the next chunk when the
        # lines before it are used up, so the bad byte sits on the next line plus the newlines
        # that precede it inside the failing chunk.
        consumed = self.reader.line_num  # type: ignore[attr-defined]
        return consumed + 1 + bytes(exc.object[: exc.start]).count(b"\n")


PARSER = DelimitedParser()
