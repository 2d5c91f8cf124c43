"""Cells for CSV files that people open in spreadsheets: formulas are neutralized, numbers kept.

A cell starting with = + - @ (or tab/CR) would be run as a formula by Excel or LibreOffice; a quote
in front makes it text. Plain numbers such as -75.00 stay numbers.
"""

from __future__ import annotations

import re

_NUMBER = re.compile(r"[+-]?\d[\d,]*(\.\d+)?")  # whole cell only: fullmatch, as "$" would let "-1\n" pass
_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    text = "" if value is None else str(value)
    if text.startswith(_TRIGGERS) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text
