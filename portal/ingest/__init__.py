"""Turn partner files of expense line items into validated, normalized rows.
Pure Python: no web framework, no database; callers decide what to store."""
