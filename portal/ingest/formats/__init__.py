"""File-format parsers behind one protocol (see base.Parser); one module per format.
Kept import-free so that normalize.py can import base.py without pulling in every parser."""
