"""Marshmallow schemas shared by every API module: the problem document and its field errors."""

from __future__ import annotations

import marshmallow as ma


class FieldErrorSchema(ma.Schema):
    field = ma.fields.String(allow_none=True, metadata={"description": "The field (dotted path), if any."})
    message = ma.fields.String(required=True)
    row = ma.fields.Integer(metadata={"description": "For a row of a file or batch: its number."})


class ProblemSchema(ma.Schema):
    """An error, as RFC 9457 `application/problem+json`."""

    type = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    status = ma.fields.Integer(required=True)
    detail = ma.fields.String(required=True)
    instance = ma.fields.String(required=True)
    errors = ma.fields.List(ma.fields.Nested(FieldErrorSchema), required=True)
