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


def write_email_files() -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EMAIL_HEADER)
    writer.writerows(EMAIL_ROWS)
    (HERE / "learners_by_email.csv").write_text(out.getvalue(), encoding="utf-8")
    with (HERE / "learners_by_email.jsonl").open("w", encoding="utf-8") as fh:
        for row in EMAIL_ROWS:
            fh.write(json.dumps(dict(zip(EMAIL_HEADER, row, strict=True))) + "\n")


def write_name_files() -> None:
    book = Workbook()
    sheet = book.active
    sheet.title = "Charges"
    sheet.append(NAME_HEADER)
    for row in NAME_ROWS:
        sheet.append(row)
    book.save(HERE / "employers_by_name.xlsx")
    document = docx.Document()
    document.add_paragraph("Statement of charges, October 2026")
    table = document.add_table(rows=1, cols=len(NAME_HEADER))
    for cell, text in zip(table.rows[0].cells, NAME_HEADER, strict=True):
        cell.text = text
    for row in NAME_ROWS:
        for cell, text in zip(table.add_row().cells, row, strict=True):
            cell.text = text
    document.save(HERE / "employers_by_name.docx")
    with (HERE / "employers_by_name.json").open("w", encoding="utf-8") as fh:
        json.dump([dict(zip(NAME_HEADER, row, strict=True)) for row in NAME_ROWS], fh, indent=1)


if __name__ == "__main__":
    write_email_files()
    write_name_files()
