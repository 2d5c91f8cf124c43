"""Spreadsheet-safe CSV cells: formulas are neutralized, plain numbers stay numbers."""

import pytest

from portal.core.csvsafe import safe_cell


@pytest.mark.parametrize("number", ["-75.00", "+1", "-1,234.50", "12"])
def test_safe_cell_when_plain_number_keeps_it(number):
    assert safe_cell(number) == number


@pytest.mark.parametrize("text", ["-1\n", '-1\n=HYPERLINK("http://x")', "+2\r\n"])
def test_safe_cell_when_number_followed_by_newline_quotes_it(text):
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize("text", ["=SUM(A1:A2)", "-2+3", "@cmd", "\tx"])
def test_safe_cell_when_formula_quotes_it(text):
    assert safe_cell(text) == "'" + text
