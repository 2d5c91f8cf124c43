"""Pick the parser for an upload from its content (never its file name) and open it.
detect_format takes a seekable binary stream because telling XLSX from DOCX needs the zip directory."""

from __future__ import annotations

import codecs
import csv
import shutil
import sqlite3
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from typing import BinaryIO

import psycopg
from redis.exceptions import RedisError
from sqlalchemy.exc import DataError, SQLAlchemyError

from portal.ingest.formats.base import UNSUPPORTED_FORMAT, IngestError, ParsedFile, Parser, SourceRow
from portal.ingest.formats.delimited import HEAD_BYTES, detect_encoding
from portal.ingest.formats.delimited import PARSER as DELIMITED
from portal.ingest.formats.docx import PARSER as DOCX
from portal.ingest.formats.json_format import PARSER as JSON
from portal.ingest.formats.xlsx import PARSER as XLSX

ZIP_MAGIC = b"PK\x03\x04"
# Zip-based formats, recognised by a member only they have.
ZIP_FORMATS: tuple[tuple[str, Parser], ...] = (("xl/workbook.xml", XLSX), ("word/document.xml", DOCX))
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_KNOWN_BINARY = {
    b"%PDF": "a PDF",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
}
_UTF16_32 = ("utf-16", "utf-16-le", "utf-16-be", "utf-32")


def ensure_seekable(stream: BinaryIO) -> BinaryIO:
    """Return the stream itself if seekable, else a spooled copy (memory up to 8 MB, then disk)."""
    if stream.seekable():
        return stream
    # Not a context manager: the spool outlives this function and is closed with the caller's stream.
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115
    shutil.copyfileobj(stream, spool)
    spool.seek(0)
    return spool  # type: ignore[return-value]


def detect_format(stream: BinaryIO) -> Parser:
    """The parser for this content; the stream's position is left unchanged.

    Raises IngestError for empty files and anything that is not CSV/XLSX/JSON/DOCX.
    """
    start = stream.tell()
    head = stream.read(HEAD_BYTES)
    stream.seek(start)
    if not head:
        raise IngestError("The file is empty.")
    if head.startswith(ZIP_MAGIC):
        try:
            with zipfile.ZipFile(stream) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise IngestError(f"The file looks like a zip-based document but is damaged: {exc}.") from exc
        finally:
            stream.seek(start)
        for member, parser in ZIP_FORMATS:
            if member in names:
                return parser
        raise IngestError(UNSUPPORTED_FORMAT)
    if head.startswith(_OLE_MAGIC):
        raise IngestError(
            f"{UNSUPPORTED_FORMAT} It looks like an old Excel/Word file or a password-protected "
            "workbook: save it as .xlsx or CSV without a password."
        )
    for magic, what in _KNOWN_BINARY.items():
        if head.startswith(magic):
            raise IngestError(f"{UNSUPPORTED_FORMAT} It looks like {what}.")
    try:
        encoding = detect_encoding(head)
        text = codecs.getincrementaldecoder(encoding)().decode(head, final=False)
    except (IngestError, UnicodeDecodeError, LookupError) as exc:
        raise IngestError(UNSUPPORTED_FORMAT) from exc
    if "\x00" in text or (encoding not in _UTF16_32 and b"\x00" in head) or _mostly_control(text):
        raise IngestError(UNSUPPORTED_FORMAT)
    stripped = text.lstrip("\ufeff \t\r\n")
    if not stripped:
        raise IngestError("The file is empty.")
    if stripped[0] in "[{":
        return JSON
    return DELIMITED


def _mostly_control(text: str) -> bool:
    sample = text[:4096]
    control = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\r\n\f")
    return control > max(2, len(sample) // 100)


def open_source(stream: BinaryIO, *, sheet: str | None = None) -> ParsedFile:
    """Detect the format and open the file; use ParsedFile.has_rows() to spot header-only files.

    Whatever a parser raises while reading the file (csv.Error, UnicodeError, a damaged zip,
    RecursionError, MemoryError, a library's own error ...) comes out as an IngestError naming the
    row, here and while the rows are read, so a hostile file can only ever fail its upload. Only
    failures of the machine itself (see is_infrastructure_error) pass through, to be retried.
    """
    stream = ensure_seekable(stream)
    try:
        parsed = detect_format(stream).open(stream, sheet=sheet)
    except Exception as exc:
        raise as_ingest_error(exc, None) from exc
    parsed.rows = _guarded(parsed.rows)
    return parsed


def _guarded(rows: Iterator[SourceRow]) -> Iterator[SourceRow]:
    last = None
    try:
        while True:
            try:
                row = next(rows)
            except StopIteration:
                return
            except Exception as exc:
                raise as_ingest_error(exc, last) from exc
            last = row.number
            yield row
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()


def is_infrastructure_error(exc: BaseException) -> bool:
    """A failure of the database, Redis, storage or the network: worth retrying, unlike the file."""
    if isinstance(exc, (DataError, psycopg.DataError, sqlite3.DataError)):
        return False  # a value from the file the database refused
    if isinstance(
        exc, (SQLAlchemyError, psycopg.Error, sqlite3.Error, RedisError, ConnectionError, TimeoutError)
    ):
        return True
    if isinstance(exc, OSError) and exc.errno is not None:  # a real system call failed (EIO, ENOSPC)
        return True
    return type(exc).__module__.startswith(("botocore.", "boto3.", "urllib3."))


def as_ingest_error(exc: Exception, last_row: int | None) -> Exception:
    """The IngestError to show for `exc` raised while reading a file; `exc` itself if it is not the file's."""
    if isinstance(exc, IngestError) or is_infrastructure_error(exc):
        return exc
    where = "The file" if last_row is None else f"The file could be read up to row {last_row}, then it"
    if isinstance(exc, RecursionError):
        return IngestError(f"{where} is nested too deeply to read.")
    if isinstance(exc, MemoryError):
        return IngestError(f"{where} needs more memory to read than an upload may use.")
    if isinstance(exc, UnicodeError):
        return IngestError(f"{where} is not valid text in its encoding; save it as UTF-8.")
    if isinstance(exc, (zipfile.BadZipFile, zlib.error, EOFError)):
        return IngestError(f"{where} is damaged: {_short(exc)}.")
    if isinstance(exc, csv.Error):
        return IngestError(f"{where} could not be read: {_short(exc)}.")
    return IngestError(f"{where} could not be read ({type(exc).__name__}: {_short(exc)}).")


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or "no details"
    return text if len(text) <= 200 else text[:200] + "…"
