"""Tests for the format parsers and detection, on the sample corpus in tests/data and small inline files.
Each parser must stream rows with the row number a person sees, and refuse what it cannot read exactly."""

import io
import zipfile
from pathlib import Path

import pytest

from portal.ingest import safety
from portal.ingest.formats import delimited, docx, json_format, xlsx
from portal.ingest.formats.base import IngestError, ParsedFile, SourceRow, cell_text, is_totals_row
from portal.ingest.formats.detect import detect_format, open_source

DATA = Path(__file__).resolve().parents[1] / "data"


def read(name, *, skip_trailing=True, **kwargs):
    """Headers, rows and the parsed file, with rows after the data skipped as the parse job does."""
    with open(DATA / name, "rb") as fh, open_source(fh, **kwargs) as parsed:
        if skip_trailing:
            parsed.skip_trailing_rows()
        return parsed.headers, list(parsed.rows), parsed


def parse_bytes(data: bytes, **kwargs):
    parsed = open_source(io.BytesIO(data), **kwargs)
    return parsed.headers, list(parsed.rows)


# ---------------------------------------------------------------- detection


@pytest.mark.parametrize(
    ("name", "parser"),
    [
        ("comma.csv", delimited.PARSER),
        ("utf16le_bom.csv", delimited.PARSER),
        ("items.json", json_format.PARSER),
        ("items.jsonl", json_format.PARSER),
        ("lines.xlsx", xlsx.PARSER),
        ("items.docx", docx.PARSER),
    ],
)
def test_detect_format_when_sample_file_returns_matching_parser(name, parser):
    with open(DATA / name, "rb") as fh:
        assert detect_format(fh) is parser
        assert fh.tell() == 0


def test_detect_format_when_empty_file_raises_empty():
    with pytest.raises(IngestError, match="^The file is empty.$"):
        detect_format(io.BytesIO(b""))


def test_detect_format_when_only_whitespace_raises_empty():
    with pytest.raises(IngestError, match="empty"):
        detect_format(io.BytesIO(b"\xef\xbb\xbf \r\n\r\n"))


def test_detect_format_when_png_renamed_csv_raises_unsupported():
    with (
        open(DATA / "png_renamed.csv", "rb") as fh,
        pytest.raises(IngestError, match="not a supported format"),
    ):
        detect_format(fh)


def test_detect_format_when_nul_bytes_in_text_raises_unsupported():
    with pytest.raises(IngestError, match="not a supported format"):
        detect_format(io.BytesIO(b"a,b\n1,\x00\x00\x002\n"))


def test_detect_format_when_zip_without_office_parts_raises_unsupported():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "hello")
    buffer.seek(0)
    with pytest.raises(IngestError, match="not a supported format"):
        detect_format(buffer)


def test_detect_format_when_old_excel_file_explains_xls():
    with pytest.raises(IngestError, match="old Excel"):
        detect_format(io.BytesIO(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100))


def test_open_source_when_stream_not_seekable_still_parses():
    class OneWay(io.RawIOBase):
        def __init__(self, data):
            self._inner = io.BytesIO(data)

        def readable(self):
            return True

        def readinto(self, buffer):
            chunk = self._inner.read(len(buffer))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    parsed = open_source(io.BufferedReader(OneWay(b"a,b\n1,2\n")))
    assert [r.cells for r in parsed.rows] == [{"a": "1", "b": "2"}]


# ---------------------------------------------------------------- delimited


@pytest.mark.parametrize(
    "name",
    ["comma.csv", "semicolon.csv", "tab.tsv", "pipe.txt", "crlf.csv", "utf8_bom.csv", "utf16le_bom.csv"],
)
def test_delimited_when_sample_variant_reads_three_rows_with_same_headers(name):
    headers, rows, _ = read(name)
    assert headers[0] == "Employee ID" and len(headers) == 10
    assert [r.number for r in rows] == [2, 3, 4]
    assert rows[0].cells["Employee Name"] == "Ana Souza"


def test_delimited_when_semicolon_file_keeps_decimal_comma_text():
    _, rows, _ = read("semicolon.csv")
    assert rows[0].cells["Amount"] == "1.234,50"


def test_delimited_when_quoted_fields_keeps_delimiters_and_newlines():
    _, rows, _ = read("quoted.csv")
    assert rows[0].cells["Employee Name"] == "Souza, Ana"
    assert rows[0].cells["Course"] == 'Econ 101 "Intro",\nsection A'


def test_delimited_when_record_spans_lines_numbers_rows_by_first_line():
    _, rows, _ = read("quoted.csv")
    assert [r.number for r in rows] == [2, 4, 5]


def test_delimited_when_cp1252_decodes_accents_and_euro():
    _, rows, _ = read("cp1252.csv")
    assert rows[0].cells["Employee Name"] == "Zoë Café"
    assert rows[0].cells["Amount"] == "€1.500,00"


def test_delimited_when_header_only_has_no_rows():
    with open(DATA / "header_only.csv", "rb") as fh:
        parsed = open_source(fh)
        assert len(parsed.headers) == 10
        assert parsed.has_rows() is False


def test_parsed_file_when_has_rows_peeks_without_losing_first_row():
    parsed = open_source(io.BytesIO(b"a,b\n1,2\n3,4\n"))
    assert parsed.has_rows() is True
    assert [r.number for r in parsed.rows] == [2, 3]


def test_delimited_when_extra_column_raises_naming_row():
    with pytest.raises(IngestError, match="Row 5 has 11 columns but the header has 10"):
        read("inconsistent_columns.csv")


def test_delimited_when_row_too_short_raises_naming_row():
    with pytest.raises(IngestError, match="Row 3 has 1 columns but the header has 2"):
        parse_bytes(b"a,b\n1,2\n3\n")


def test_delimited_when_trailing_empty_cells_accepts_row():
    _, rows = parse_bytes(b"a,b\n1,2,,\n")
    assert rows[0].cells == {"a": "1", "b": "2"}


def test_delimited_when_blank_lines_skips_them_and_keeps_line_numbers():
    _, rows = parse_bytes(b"a,b\n\n1,2\n , \n3,4\n")
    assert [r.number for r in rows] == [3, 5]


def test_delimited_when_unterminated_quote_raises_naming_row():
    with pytest.raises(IngestError, match="Row 3"):
        parse_bytes(b'a,b\n1,2\n3,"4\n5,6\n')


def test_delimited_when_duplicate_header_raises():
    with pytest.raises(IngestError, match="twice"):
        parse_bytes(b"Amount,amount\n1,2\n")


def test_delimited_when_later_chunk_not_utf8_raises_decode_error_naming_row():
    data = b"a,b\n" + b"x,y\n" * 30000 + b"caf\xe9,1\n"
    with pytest.raises(IngestError, match="Could not decode the file as text at row 30002 "):
        parse_bytes(data)


def test_parsed_file_when_closed_after_peek_closes_underlying_rows():
    stream = io.BytesIO(b"a,b\n1,2\n3,4\n")
    parsed = open_source(stream)
    assert parsed.has_rows()
    source = parsed._peeked[0]
    parsed.close()
    assert list(source) == []


def test_delimited_when_semicolon_and_comma_decimals_picks_semicolon():
    headers, rows = parse_bytes(b"Name;Amount\nBob;1,50\nAl;2,00\n")
    assert headers == ["Name", "Amount"] and rows[0].cells["Amount"] == "1,50"


def test_delimited_when_utf8_without_bom_keeps_non_ascii():
    _, rows = parse_bytes("Name,Amount\nJosé,1\n".encode())
    assert rows[0].cells["Name"] == "José"


def test_delimited_when_utf16_be_bom_decodes():
    _, rows = parse_bytes("\ufeffa,b\n1,2\n".encode("utf-16-be"))
    assert rows[0].cells == {"a": "1", "b": "2"}


def test_delimited_when_rows_consumed_leaves_caller_stream_open():
    stream = io.BytesIO(b"a,b\n1,2\n")
    parsed = open_source(stream)
    list(parsed.rows)
    parsed.close()
    assert not stream.closed


def test_detect_encoding_when_latin_text_prefers_cp1252():
    assert delimited.detect_encoding("Café;Crème;€5\n".encode("cp1252")) == "cp1252"


def test_delimited_rows_when_iterated_is_lazy_generator():
    parsed = open_source(io.BytesIO(b"a,b\n1,2\n"))
    assert not isinstance(parsed.rows, list)


# ---------------------------------------------------------------- xlsx


def test_xlsx_when_title_rows_above_header_finds_header():
    headers, rows, _ = read("lines.xlsx")
    assert headers[:2] == ["Employee ID", "Employee Name"]
    assert [r.number for r in rows] == [5, 7, 8]


def test_xlsx_when_totals_row_after_data_skips_it_and_lists_it():
    _, rows, parsed = read("lines.xlsx")
    assert all(r.cells["Employee ID"] != "Total" for r in rows)
    assert parsed.skipped == [{"row": 9, "reason": "a totals row", "text": "Total | 1279.49"}]


def test_xlsx_when_read_without_skipping_gives_the_totals_row_as_a_row():
    _, rows, _ = read("lines.xlsx", skip_trailing=False)
    assert [r.number for r in rows] == [5, 7, 8, 9]


def test_xlsx_when_cells_typed_converts_to_exact_text():
    _, rows, _ = read("lines.xlsx")
    assert rows[0].cells["Amount"] == "1234.5"
    assert rows[0].cells["Date of Service"] == "2026-01-15"
    assert rows[1].cells["Employee ID"] == "101"
    assert rows[1].cells["Amount"] == "89.99"
    assert rows[1].cells["Date of Service"] == "46042"
    assert rows[2].cells["Amount"] == "-45"
    assert rows[2].cells["Term"] == ""


def test_xlsx_when_sheet_named_reads_that_sheet():
    _, rows, parsed = read("lines.xlsx", sheet="Fall")
    assert parsed.sheet == "Fall"
    assert [r.cells["Employee ID"] for r in rows] == ["E400"]


def test_xlsx_when_sheet_missing_raises_listing_sheets():
    with pytest.raises(IngestError, match="no sheet named 'Nope'. Sheets: Charges, Fall"):
        read("lines.xlsx", sheet="Nope")


def test_xlsx_when_value_outside_header_columns_raises():
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append(["Employee ID", "Amount"])
    wb.active.append(["E1", 5, "stray"])
    buffer = io.BytesIO()
    wb.save(buffer)
    buffer.seek(0)
    with pytest.raises(IngestError, match="Row 2 has a value in column C"):
        list(open_source(buffer).rows)


def test_xlsx_when_bomb_refuses_before_parsing():
    with pytest.raises(IngestError, match="decompression bomb"):
        read("bomb.xlsx")


def test_xlsx_when_total_size_over_limit_refuses():
    with open(DATA / "lines.xlsx", "rb") as fh, pytest.raises(IngestError, match="would expand"):
        xlsx.XlsxParser(max_uncompressed=1000).open(fh)


# ---------------------------------------------------------------- safety


def _zip_with(members: dict[str, bytes]) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    buffer.seek(0)
    return buffer


def test_check_xml_parts_when_doctype_present_refuses():
    evil = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><workbook>&a;</workbook>'
    stream = _zip_with({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": evil})
    with pytest.raises(IngestError, match="DTD or XML entities"):
        safety.check_xml_parts(stream, parse_parts=("xl/workbook.xml",))


def test_check_xml_parts_when_utf16_entity_refuses():
    evil = '<?xml version="1.0" encoding="UTF-16"?><!ENTITY a "b"><x/>'.encode("utf-16-le")
    with pytest.raises(IngestError, match="DTD or XML entities"):
        safety.check_xml_parts(_zip_with({"xl/styles.xml": evil}))


def test_check_xml_parts_when_clean_restores_position():
    stream = _zip_with({"[Content_Types].xml": b"<Types/>"})
    safety.check_xml_parts(stream, parse_parts=("[Content_Types].xml",))
    assert stream.tell() == 0


def test_check_zip_when_highly_compressed_member_refuses():
    stream = _zip_with({"xl/worksheets/sheet1.xml": b"\x00" * (2 * 1024 * 1024)})
    with pytest.raises(IngestError, match="expands more than 100 times"):
        safety.check_zip(stream)


def test_docx_when_entity_in_document_refuses():
    evil = b'<?xml version="1.0"?><!DOCTYPE w [<!ENTITY e "x">]><w:document/>'
    stream = _zip_with({"[Content_Types].xml": b"<Types/>", "word/document.xml": evil})
    with pytest.raises(IngestError, match="DTD or XML entities"):
        docx.PARSER.open(stream)


# ---------------------------------------------------------------- json


def test_json_array_when_number_keeps_exact_text():
    _, rows, _ = read("items.json")
    assert rows[0].cells["Amount"] == "1234.5"
    assert [r.number for r in rows] == [1, 2, 3]


def test_json_array_when_keys_vary_headers_are_union_in_first_seen_order():
    headers, rows = parse_bytes(b'[{"a": 1, "b": 2}, {"c": 0.1, "a": 3}]')
    assert headers == ["a", "b", "c"]
    assert rows[0].cells == {"a": "1", "b": "2", "c": ""}
    assert rows[1].cells["c"] == "0.1"


def test_json_array_when_nested_value_raises_naming_row():
    with pytest.raises(IngestError, match="Row 2: the field 'b' has a nested value"):
        parse_bytes(b'[{"a": 1}, {"b": {"x": 1}}]')


def test_json_array_when_item_not_object_raises_naming_row():
    with pytest.raises(IngestError, match="Row 2 is not an object"):
        parse_bytes(b'[{"a": 1}, 5]')


def test_json_array_when_duplicate_key_raises():
    with pytest.raises(IngestError, match="'a' twice"):
        parse_bytes(b'[{"a": 1, "a": 2}]')


def test_json_when_invalid_raises():
    with pytest.raises(IngestError, match="not valid JSON"):
        parse_bytes(b'[{"a": 1,]')


def test_json_when_nan_raises():
    with pytest.raises(IngestError):
        parse_bytes(b'[{"a": NaN}]')


def test_json_when_array_over_limit_refuses():
    with pytest.raises(IngestError, match="too large"):
        json_format.JsonParser(max_array_bytes=10).open(io.BytesIO(b'[{"a": "123456789"}]'))


def test_json_lines_when_sample_file_reads_rows_by_line_number():
    _, rows, parsed = read("items.jsonl")
    assert parsed.format == "jsonl"
    assert [r.number for r in rows] == [1, 2, 3]
    assert rows[0].cells["Amount"] == "1234.5"


def test_json_lines_when_later_object_has_new_key_keeps_it_in_cells():
    headers, rows = parse_bytes(b'{"a": 1}\n\n{"a": 2, "z": "x"}\n')
    assert headers == ["a"]
    assert rows[1].number == 3 and rows[1].cells == {"a": "2", "z": "x"}


def test_json_lines_when_bad_line_raises_naming_line():
    parsed = open_source(io.BytesIO(b'{"a": 1}\n{"a": \n'))
    with pytest.raises(IngestError, match="Row 2 is not a valid JSON object"):
        list(parsed.rows)


def test_json_lines_when_pretty_printed_object_raises():
    with pytest.raises(IngestError, match="JSON Lines needs one object per line"):
        parse_bytes(b'{\n  "a": 1\n}\n')


def test_json_array_when_empty_has_no_rows():
    parsed = open_source(io.BytesIO(b"[]"))
    assert parsed.headers == [] and not parsed.has_rows()


# ---------------------------------------------------------------- docx


def test_docx_when_several_tables_picks_line_item_table():
    headers, rows, _ = read("items.docx")
    assert headers[0] == "Employee ID"
    assert [r.number for r in rows] == [2, 3, 4]
    assert rows[1].cells["Fee Type"] == "Books & Materials"


def test_docx_when_totals_row_after_data_skips_and_lists_it():
    _, _, parsed = read("items.docx")
    assert parsed.skipped == [{"row": 5, "reason": "a totals row", "text": "Total | 1,279.49"}]


def test_docx_when_no_tables_raises():
    import docx as python_docx

    document = python_docx.Document()
    document.add_paragraph("no table")
    buffer = io.BytesIO()
    document.save(buffer)
    buffer.seek(0)
    with pytest.raises(IngestError, match="no table"):
        open_source(buffer)


# ---------------------------------------------------------------- base helpers


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (1234.5, "1234.5"),
        (1234.0, "1234"),
        (0.1 + 0.2, "0.3"),
        (89.99, "89.99"),
        (10**20 * 1.0, "100000000000000000000"),
        (True, "TRUE"),
        (7, "7"),
        ("x", "x"),
    ],
)
def test_cell_text_when_typed_value_gives_plain_text(value, text):
    assert cell_text(value) == text


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["Total", ""], True),
        (["", "Grand Total"], True),
        (["Subtotal:"], True),
        (["E1", "Total Immersion"], False),
        (["Totality"], False),
    ],
)
def test_is_totals_row_when_first_filled_cell_checked(values, expected):
    assert is_totals_row(values) is expected


def test_parsed_file_when_used_as_context_manager_closes():
    closed = []
    with ParsedFile(headers=[], rows=iter([SourceRow(1, {})]), _close=lambda: closed.append(True)):
        pass
    assert closed == [True]


def test_detect_encoding_when_short_latin_name_row_prefers_cp1252():
    assert delimited.detect_encoding("Name;Amount\nZoë Café;€1.500,00\n".encode("cp1252")) == "cp1252"


def test_detect_encoding_when_shift_jis_text_uses_multibyte_codec():
    data = "名前,金額\n山田太郎,1200\n東京大学,3000\n".encode("shift_jis")
    assert data.decode(delimited.detect_encoding(data)) == "名前,金額\n山田太郎,1200\n東京大学,3000\n"
