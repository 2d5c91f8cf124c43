"""Invoices ("reports") over the API: list, one, lines, download, approve, deny, dispute a line."""

from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint(
    "api_reports", __name__, description="Invoices (reports): read, download, approve, deny, dispute."
)
