"""Regenerate the sample partner files in tests/data used by tests/ingest.
Run: .venv/bin/python tests/data/make_samples.py  (writes text, XLSX, DOCX and the zip bomb)."""

from __future__ import annotations

import datetime as dt
import json
import zipfile
from pathlib import Path

import docx
from openpyxl import Workbook

HERE = Path(__file__).resolve().parent

HEADER = [
    "Employee ID",
    "Employee Name",
    "Employer",
    "Transaction ID",
    "Fee Type",
    "Amount",
    "Currency",
    "Date of Service",
    "Course",
    "Term",
]
ROWS = [
    [
        "E100",
        "Ana Souza",
        "ACME",
        "T-1",
        "Tuition Fee",
        "1,234.50",
        "USD",
        "2026-01-15",
        "Econ 101",
        "Spring 2026",
    ],
    [
        "E101",
        "Bo Chen",
        "ACME",
        "T-2",
        "Books & Materials",
        "89.99",
        "USD",
        "2026-01-20",
        "Econ 101",
        "Spring 2026",
    ],
    ["E102", "Cy Dunn", "GLOBEX", "T-3", "Tutoring Session", "(45.00)", "USD", "2026-02-01", "Math 200", ""],
]


def csv_text(delimiter: str, rows: list[list[str]] = ROWS, header: list[str] = HEADER) -> str:
    def quote(cell: str) -> str:
        if any(ch in cell for ch in (delimiter, '"', "\n", "\r")):
            return '"' + cell.replace('"', '""') + '"'
        return cell

    return "".join(delimiter.join(quote(c) for c in line) + "\n" for line in [header, *rows])


def write_text() -> None:
    (HERE / "comma.csv").write_text(csv_text(","), encoding="utf-8", newline="")
    european = [[*r[:5], r[5].replace(",", "_").replace(".", ",").replace("_", "."), *r[6:]] for r in ROWS]
    (HERE / "semicolon.csv").write_text(csv_text(";", european), encoding="utf-8", newline="")
    (HERE / "tab.tsv").write_text(csv_text("\t"), encoding="utf-8", newline="")
    (HERE / "pipe.txt").write_text(csv_text("|"), encoding="utf-8", newline="")
    quoted = [
        [
            "E100",
            "Souza, Ana",
            "ACME",
            "T-1",
            "Tuition",
            "1,234.50",
            "USD",
            "2026-01-15",
            'Econ 101 "Intro",\nsection A',
            "Spring 2026",
        ],
        *ROWS[1:],
    ]
    (HERE / "quoted.csv").write_text(csv_text(",", quoted), encoding="utf-8", newline="")
    (HERE / "utf8_bom.csv").write_bytes(b"\xef\xbb\xbf" + csv_text(",").encode("utf-8"))
    (HERE / "utf16le_bom.csv").write_bytes(b"\xff\xfe" + csv_text("\t").encode("utf-16-le"))
    legacy = [
        ["E200", "Zoë Café", "ACME", "T-9", "Tuition", "€1.500,00", "", "05.10.2026", "Crème brûlée 101", ""]
    ]
    (HERE / "cp1252.csv").write_bytes(csv_text(";", legacy).encode("cp1252"))
    (HERE / "crlf.csv").write_bytes(csv_text(",").replace("\n", "\r\n").encode("utf-8"))
    bad_cols = csv_text(",") + "E103,Dee,ACME,T-4,Tuition,10.00,USD,2026-03-01,Art,Fall,EXTRA\n"
    (HERE / "inconsistent_columns.csv").write_text(bad_cols, encoding="utf-8", newline="")
    (HERE / "header_only.csv").write_text(",".join(HEADER) + "\n", encoding="utf-8", newline="")
    (HERE / "empty.csv").write_bytes(b"")
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"
    (HERE / "png_renamed.csv").write_bytes(png + bytes(range(256)))
    bad_values = [
        ["E300", "Ed", "ACME", "T-10", "Tuition", "12.345", "USD", "2026-01-15", "", ""],
        ["E301", "Fi", "ACME", "T-11", "Tuition", "100.00", "XYZ", "2026-01-15", "", ""],
        ["E302", "Gus", "ACME", "T-12", "Tuition", "100.00", "USD", "2026-02-30", "", ""],
        ["", "Hal", "ACME", "T-13", "Parking", "abc", "USD", "03/04/2026", "", ""],
    ]
    (HERE / "bad_values.csv").write_text(csv_text(",", bad_values), encoding="utf-8", newline="")
    items = [dict(zip(HEADER, r, strict=True)) for r in ROWS]
    items[0]["Amount"] = 1234.5  # a JSON number; the parser must keep '1234.5' exactly
    (HERE / "items.json").write_text(json.dumps(items, indent=2), encoding="utf-8")
    (HERE / "items.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")


def write_xlsx() -> None:
    wb = Workbook()
    ws = wb.active
    ws.title = "Charges"
    ws.append(["State University - Charges for Spring 2026"])
    ws.append(["Generated 2026-03-01"])
    ws.append([])
    ws.append(HEADER)
    ws.append(
        [
            "E100",
            "Ana Souza",
            "ACME",
            "T-1",
            "Tuition Fee",
            1234.5,
            "USD",
            dt.datetime(2026, 1, 15),
            "Econ 101",
            "Spring 2026",
        ]
    )
    ws.append([])
    ws.append([101, "Bo Chen", "ACME", "T-2", "Books", 89.99, "USD", 46042, "Econ 101", "Spring 2026"])
    ws.append(
        ["E102", "Cy Dunn", "GLOBEX", "T-3", "Tutor", -45, "USD", dt.date(2026, 2, 1), "Math 200", None]
    )
    ws.append(["Total", None, None, None, None, 1279.49])
    ws.append([])
    other = wb.create_sheet("Fall")
    other.append(HEADER)
    other.append(
        ["E400", "Ivy", "ACME", "F-1", "Tuition", 500, "EUR", dt.date(2026, 9, 1), "Bio", "Fall 2026"]
    )
    wb.save(HERE / "lines.xlsx")


def write_docx() -> None:
    document = docx.Document()
    document.add_paragraph("Invoice 2026-17 for ACME")
    intro = document.add_table(rows=1, cols=2)
    intro.rows[0].cells[0].text = "Invoice"
    intro.rows[0].cells[1].text = "2026-17"
    table = document.add_table(rows=1, cols=len(HEADER))
    for cell, text in zip(table.rows[0].cells, HEADER, strict=True):
        cell.text = text
    for values in ROWS:
        cells = table.add_row().cells
        for cell, text in zip(cells, values, strict=True):
            cell.text = text
    total = table.add_row().cells
    total[0].text = "Total"
    total[5].text = "1,279.49"
    document.save(HERE / "items.docx")


# A JSON feed in minor units with timestamps: every row is 5 October 2026 where it was written.
FEED = [
    {
        "employee_id": "E100",
        "employer": "ACME",
        "transaction_id": "C-1",
        "fee_type": "Tuition",
        "amount_cents": 125050,
        "currency": "USD",
        "service_date": "2026-10-05T21:30:00-05:00",  # the 6th in UTC
    },
    {
        "employee_id": "E101",
        "employer": "ACME",
        "transaction_id": "C-2",
        "fee_type": "Books",
        "amount_cents": 125050,
        "currency": "JPY",
        "service_date": "2026-10-05 01:30:00+02:00",  # the 4th in UTC
    },
    {
        "employee_id": "E102",
        "employer": "GLOBEX",
        "transaction_id": "C-3",
        "fee_type": "Tutoring",
        "amount_cents": -1250505,
        "currency": "BHD",
        "service_date": "2026-10-05T00:15:00Z",
    },
]
TRAILER = [["Total", None, None, None, None, 1279.49], [], ["End of report"], ["Signed: ________"]]


def write_feeds_and_trailers() -> None:
    """items_cents.json(l): amounts in cents, timestamps with offsets; *_trailing.*: the three
    sample rows, then what reports put after the data (a total, 'End of report', a signature)."""
    (HERE / "items_cents.json").write_text(json.dumps(FEED, indent=2) + "\n", encoding="utf-8")
    (HERE / "items_cents.jsonl").write_text("".join(json.dumps(i) + "\n" for i in FEED), encoding="utf-8")

    trailer_text = [[("" if v is None else str(v)) for v in row] for row in TRAILER]
    text = csv_text(",") + "".join(",".join(row) + "\n" for row in trailer_text)
    (HERE / "comma_trailing.csv").write_text(text, encoding="utf-8", newline="")

    wb = Workbook()
    ws = wb.active
    ws.title = "Charges"
    ws.append(HEADER)
    for values in ROWS:
        ws.append(values)
    # An Excel date-time cell late in the evening: the date is the one written, not UTC's.
    ws.cell(row=2, column=HEADER.index("Date of Service") + 1, value=dt.datetime(2026, 1, 15, 23, 30))
    for values in TRAILER:
        ws.append(values)
    ws.append(["Approved by J. Doe, Registrar"])
    wb.save(HERE / "lines_trailing.xlsx")

    document = docx.Document()
    table = document.add_table(rows=1, cols=len(HEADER))
    for cell, text_ in zip(table.rows[0].cells, HEADER, strict=True):
        cell.text = text_
    for values in ROWS:
        for cell, text_ in zip(table.add_row().cells, values, strict=True):
            cell.text = text_
    subtotal = table.add_row().cells
    subtotal[0].text = "Subtotal"
    subtotal[5].text = "1,279.49"
    signature = table.add_row().cells
    merged = signature[0].merge(signature[-1])  # a signature line spans the table
    merged.text = "Signature: ____________  Date: ________"
    document.save(HERE / "items_trailing.docx")


def write_bomb() -> None:
    """A 'workbook' whose one sheet expands to 300 MB of zeros: ~300 KB on disk."""
    chunk = b"\x00" * (1024 * 1024)
    with zipfile.ZipFile(
        HERE / "bomb.xlsx", "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9
    ) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
        with archive.open("xl/worksheets/sheet1.xml", "w") as member:
            for _ in range(300):
                member.write(chunk)


if __name__ == "__main__":
    write_text()
    write_xlsx()
    write_docx()
    write_feeds_and_trailers()
    write_bomb()
