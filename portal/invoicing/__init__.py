"""Invoicing: billing periods and schedules, building invoices set-based, and the invoice lifecycle."""
