"""Parser for JSON: an array of flat objects, or JSON Lines (one object per line, streamed).
Numbers keep their exact source text; nested values and duplicate keys are errors naming the row."""

from __future__ import annotations

import codecs
import contextlib
import io
import itertools
import json
from collections.abc import Iterator
from typing import Any, BinaryIO

from portal.ingest import limits
from portal.ingest.formats.base import IngestError, ParsedFile, SourceRow, check_cells, check_header_lengths
from portal.ingest.formats.delimited import HEAD_BYTES, detect_encoding

MAX_ARRAY_BYTES = limits.MAX_JSON_ARRAY_BYTES
MAX_LINE_CHARS = limits.MAX_JSON_LINE_CHARS


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


_DECODER = json.JSONDecoder(
    object_pairs_hook=_object_pairs,
    parse_float=str,  # keep '1234.50' exactly as written: no float artifacts
    parse_int=str,
    parse_constant=_reject_constant,
)


def _first_char(head: bytes) -> str:
    try:
        text = codecs.getincrementaldecoder(detect_encoding(head))().decode(head[:4096], final=False)
    except (IngestError, UnicodeDecodeError, LookupError):
        return ""
    text = text.lstrip("\ufeff \t\r\n")
    return text[:1]


def _check_headers(headers: list[str]) -> list[str]:
    if len(headers) > limits.MAX_COLUMNS:
        raise IngestError(limits.too_many_columns(len(headers)))
    check_header_lengths(headers)
    return headers


def _cells(obj: object, label: str) -> dict[str, str]:
    if not isinstance(obj, dict):
        raise IngestError(f"{label} is not an object with named fields.")
    cells = {}
    for key, value in obj.items():
        if isinstance(value, (dict, list)):
            raise IngestError(
                f"{label}: the field '{key}' has a nested value; only flat values are supported."
            )
        if value is None:
            cells[key.strip()] = ""
        elif isinstance(value, bool):
            cells[key.strip()] = "true" if value else "false"
        else:
            cells[key.strip()] = str(value)
    if len(cells) > limits.MAX_COLUMNS:
        raise IngestError(f"{label} has {len(cells):,} fields; at most {limits.MAX_COLUMNS} are read.")
    check_cells(list(cells.values()), label.removeprefix("Row "))
    return cells


class JsonParser:
    name = "json"

    def __init__(self, *, max_array_bytes: int = MAX_ARRAY_BYTES) -> None:
        self.max_array_bytes = max_array_bytes

    def sniff(self, head: bytes) -> bool:
        return _first_char(head) in ("[", "{")

    def open(self, stream: BinaryIO, *, sheet: str | None = None) -> ParsedFile:
        """Parse from the stream's current position (seekable). `sheet` is ignored."""
        start = stream.tell()
        head = stream.read(HEAD_BYTES)
        stream.seek(start)
        first = _first_char(head)
        if first == "[":
            return self._open_array(stream, start)
        if first == "{":
            return self._open_lines(stream, detect_encoding(head))
        raise IngestError("The file is not a JSON array of objects or JSON Lines.")

    def _open_array(self, stream: BinaryIO, start: int) -> ParsedFile:
        size = stream.seek(0, io.SEEK_END) - start
        stream.seek(start)
        if size > self.max_array_bytes:
            raise IngestError(
                f"The JSON file is too large ({size // (1024 * 1024)} MB); the limit for a JSON array is "
                f"{self.max_array_bytes // (1024 * 1024)} MB. Use JSON Lines or CSV for bigger files."
            )
        raw = stream.read()
        try:
            text = raw.decode(json.detect_encoding(raw))
            data = _DECODER.decode(text.lstrip("\ufeff"))
        except UnicodeDecodeError as exc:
            raise IngestError(f"Could not decode the file as text: {exc.reason}.") from exc
        except _DuplicateKey as exc:
            raise IngestError(f"An object in the JSON array has the field '{exc.key}' twice.") from exc
        except RecursionError as exc:
            raise IngestError(limits.nested_too_deep("The JSON file")) from exc
        except ValueError as exc:
            raise IngestError(f"The file is not valid JSON: {exc}.") from exc
        if not isinstance(data, list):
            raise IngestError("The JSON file must hold an array of objects.")
        rows = [SourceRow(number=i, cells=_cells(obj, f"Row {i}")) for i, obj in enumerate(data, start=1)]
        headers = _check_headers(list(dict.fromkeys(key for row in rows for key in row.cells)))
        filled = (SourceRow(r.number, {h: r.cells.get(h, "") for h in headers}) for r in rows)
        return ParsedFile(headers=headers, rows=filled, format=self.name)

    def _open_lines(self, stream: BinaryIO, encoding: str) -> ParsedFile:
        text = io.TextIOWrapper(stream, encoding=encoding, errors="strict", newline=None)
        lines = self._objects(text)
        try:
            first = next(lines)
        except StopIteration:
            return ParsedFile(headers=[], rows=iter(()), format="jsonl")
        headers = _check_headers(list(first.cells))
        return ParsedFile(headers=headers, rows=self._fill(first, lines, headers), format="jsonl")

    @staticmethod
    def _fill(first: SourceRow, rest: Iterator[SourceRow], headers: list[str]) -> Iterator[SourceRow]:
        # Keys not in the first object are kept in the cells: nothing is dropped, the mapping decides.
        for row in itertools.chain([first], rest):
            yield SourceRow(row.number, {h: row.cells.get(h, "") for h in headers} | row.cells)

    @staticmethod
    def _objects(text: io.TextIOWrapper) -> Iterator[SourceRow]:
        number = 0
        try:
            while True:
                try:
                    line = text.readline(MAX_LINE_CHARS + 1)
                except UnicodeDecodeError as exc:
                    raise IngestError(f"Could not decode line {number + 1} as text: {exc.reason}.") from exc
                if not line:
                    return
                number += 1
                if len(line) > MAX_LINE_CHARS:
                    raise IngestError(f"Line {number} is longer than {MAX_LINE_CHARS} characters.")
                line = line.lstrip("\ufeff").strip()
                if not line:
                    continue
                label = f"Row {number}"
                try:
                    obj = _DECODER.decode(line)
                except _DuplicateKey as exc:
                    raise IngestError(f"{label} has the field '{exc.key}' twice.") from exc
                except RecursionError as exc:
                    raise IngestError(limits.nested_too_deep(label)) from exc
                except ValueError as exc:
                    raise IngestError(
                        f"{label} is not a valid JSON object ({exc}); JSON Lines needs one object per line."
                    ) from exc
                yield SourceRow(number=number, cells=_cells(obj, label))
        finally:
            with contextlib.suppress(ValueError):  # already detached
                text.detach()


PARSER = JsonParser()
