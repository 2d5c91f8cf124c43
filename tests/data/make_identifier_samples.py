"""Regenerate the sample files of partners that name learners by work email and employers by name
(issue 14). Run: .venv/bin/python tests/data/make_identifier_samples.py"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import docx
from openpyxl import Workbook

HERE = Path(__file__).resolve().parent

# A tutoring provider: only the learner's work email (in whatever case), the employer's code.
EMAIL_HEADER = ["Learner Email", "Learner", "Employer", "Session ID", "Service", "Amount", "Currency", "Date"]
EMAIL_ROWS = [
    ["Ana.Souza@Acme.example", "Ana Souza", "ACME", "S-1", "Tutoring", "120.00", "USD", "2026-10-05"],
    ["bo.chen@acme.example", "Bo Chen", "ACME", "S-2", "Tutoring", "80.00", "USD", "2026-10-06"],
    ["new.hire@acme.example", "New Hire", "ACME", "S-3", "Tutoring", "95.50", "USD", "2026-10-07"],
]

# A registrar export: the employee ID and the employer's name as the registrar writes it.
NAME_HEADER = ["Student ID", "Student Name", "Company", "Invoice Line", "Fee Type", "Amount", "Currency",
               "Date of Service"]  # fmt: skip
NAME_ROWS = [
    ["E100", "Ana Souza", "Acme Corporation", "R-1", "Tuition", "1250.00", "USD", "2026-10-01"],
    ["E101", "Bo Chen", "ACME CORPORATION", "R-2", "Tuition", "900.00", "USD", "2026-10-02"],
    ["E100", "Ana Souza", "Acmé Corporation.", "R-3", "Materials", "45.25", "USD", "2026-10-03"],
]


def write_all(stem: str, header: list[str], rows: list[list[str]]) -> None:
    """The same rows as CSV, JSON, JSON Lines, an Excel sheet and a Word table."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    (HERE / f"{stem}.csv").write_text(out.getvalue(), encoding="utf-8")
    records = [dict(zip(header, row, strict=True)) for row in rows]
    with (HERE / f"{stem}.jsonl").open("w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(record) + "\n" for record in records)
    with (HERE / f"{stem}.json").open("w", encoding="utf-8") as fh:
        json.dump(records, fh, indent=1)
    book = Workbook()
    sheet = book.active
    sheet.title = "Charges"
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    book.save(HERE / f"{stem}.xlsx")
    document = docx.Document()
    document.add_paragraph("Statement of charges, October 2026")
    table = document.add_table(rows=1, cols=len(header))
    for cell, text in zip(table.rows[0].cells, header, strict=True):
        cell.text = text
    for row in rows:
        for cell, text in zip(table.add_row().cells, row, strict=True):
            cell.text = text
    document.save(HERE / f"{stem}.docx")


if __name__ == "__main__":
    write_all("learners_by_email", EMAIL_HEADER, EMAIL_ROWS)
    write_all("employers_by_name", NAME_HEADER, NAME_ROWS)
