"""Deliverables of approved invoices: the CSV (machine view) and the PDF/A-3 (human view, CSV inside).

`csv_export` and `pdf` build the bytes, `sandbox` caps the PDF render's time and memory in a child
process, and `deliverables.render_invoice` is the job that stores both and records their sha256.
"""
