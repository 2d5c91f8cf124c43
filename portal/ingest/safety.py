"""Checks run on zip-based uploads (XLSX, DOCX) before any library parses them.
Refuses decompression bombs and XML parts carrying DTDs or entity declarations."""

from __future__ import annotations

import zipfile
from typing import BinaryIO

from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import iterparse

from portal.ingest import limits
from portal.ingest.formats.base import IngestError

MAX_UNCOMPRESSED_BYTES = limits.MAX_UNCOMPRESSED_BYTES
MAX_COMPRESSION_RATIO = limits.MAX_COMPRESSION_RATIO
RATIO_MIN_BYTES = limits.RATIO_MIN_BYTES
MAX_MEMBERS = limits.MAX_ZIP_MEMBERS

_XML_SUFFIXES = (".xml", ".rels", ".vml")
_FORBIDDEN = (b"<!doctype", b"<!entity")
# Parts may be UTF-16 encoded; look for the markers in every encoding a part may legally use.
_FORBIDDEN_ENCODED = tuple(
    marker.decode("ascii").encode(enc) for marker in _FORBIDDEN for enc in ("utf-8", "utf-16-le", "utf-16-be")
)
_CHUNK = 1024 * 1024


def open_zip(stream: BinaryIO) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise IngestError(f"The file looks like a zip-based document but is damaged: {exc}.") from exc


def check_zip(
    stream: BinaryIO,
    *,
    max_uncompressed: int = MAX_UNCOMPRESSED_BYTES,
    max_ratio: float = MAX_COMPRESSION_RATIO,
) -> None:
    """Refuse archives that would expand to more than `max_uncompressed` bytes or compress suspiciously.

    The declared sizes are trustworthy enough: zipfile stops each member at its declared size
    and fails the CRC check if the data says otherwise, and openpyxl/python-docx read through zipfile.
    The stream position is restored afterwards.
    """
    start = stream.tell()
    try:
        with open_zip(stream) as archive:
            members = archive.infolist()
            if len(members) > MAX_MEMBERS:
                raise IngestError(
                    f"The file contains {len(members)} parts; at most {MAX_MEMBERS} are accepted."
                )
            total = 0
            for info in members:
                total += info.file_size
                if info.file_size >= RATIO_MIN_BYTES and (
                    info.compress_size == 0 or info.file_size / info.compress_size > max_ratio
                ):
                    raise IngestError(
                        "The file was refused as a possible decompression bomb: the part "
                        f"'{info.filename}' expands more than {max_ratio:g} times."
                    )
            if total > max_uncompressed:
                raise IngestError(
                    "The file was refused as a possible decompression bomb: it would expand to "
                    f"{total // (1024 * 1024)} MB; the limit is {max_uncompressed // (1024 * 1024)} MB."
                )
    finally:
        stream.seek(start)


def check_xml_parts(stream: BinaryIO, *, parse_parts: tuple[str, ...] = ()) -> None:
    """Refuse any XML part declaring a DOCTYPE or ENTITY, and fully parse `parse_parts` with defusedxml.

    openpyxl parses with defusedxml (installed) or an lxml parser with resolve_entities=False, and
    python-docx uses lxml with resolve_entities=False (checked in their sources), so entities are not
    expanded anyway; OOXML never needs a DTD, so refusing them outright is a second, cheap barrier.
    Run check_zip first: it bounds how much this reads. The stream position is restored afterwards.
    """
    start = stream.tell()
    try:
        with open_zip(stream) as archive:
            names = set(archive.namelist())
            for info in archive.infolist():
                if info.filename.lower().endswith(_XML_SUFFIXES):
                    _scan_part(archive, info.filename)
            for name in parse_parts:
                if name in names:
                    _parse_part(archive, name)
    finally:
        stream.seek(start)


def _scan_part(archive: zipfile.ZipFile, name: str) -> None:
    tail = b""
    try:
        with archive.open(name) as part:
            while chunk := part.read(_CHUNK):
                window = (tail + chunk).lower()
                if any(marker in window for marker in _FORBIDDEN_ENCODED):
                    raise IngestError(
                        f"The file was refused: its part '{name}' declares a DTD or XML entities, "
                        "which office documents never need."
                    )
                tail = window[-32:]
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise IngestError(f"The file is damaged: could not read its part '{name}' ({exc}).") from exc


def _parse_part(archive: zipfile.ZipFile, name: str) -> None:
    try:
        with archive.open(name) as part:
            for _event, element in iterparse(
                part, forbid_dtd=True, forbid_entities=True, forbid_external=True
            ):
                element.clear()
    except (DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden) as exc:
        raise IngestError(f"The file was refused: its part '{name}' declares a DTD or XML entities.") from exc
    except Exception as exc:  # ParseError, zip errors: the document is unreadable either way
        raise IngestError(f"The file is damaged: its part '{name}' is not valid XML ({exc}).") from exc
