"""Cursor pagination for API lists: `?limit=&cursor=` in, `{"items": [...], "next_cursor": ...}` out.

Keyset pagination on a stable, unique sort key (by default the id): the cursor is the last row's key,
base64-encoded, and the next page is "rows after that key". Rows inserted or deleted meanwhile never
make a page repeat or skip a row that was there all along, unlike OFFSET.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import date, datetime

import marshmallow as ma
from sqlalchemy import Select, and_, or_

from portal.api.problems import abort_problem
from portal.extensions import db

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class PageArgs(ma.Schema):
    """The query arguments of every paginated list."""

    limit = ma.fields.Integer(
        load_default=DEFAULT_LIMIT,
        validate=ma.validate.Range(min=1, max=MAX_LIMIT),
        metadata={"description": f"Items per page (1-{MAX_LIMIT}, default {DEFAULT_LIMIT})."},
    )
    cursor = ma.fields.String(
        load_default=None,
        validate=ma.validate.Length(max=500),
        metadata={"description": "The `next_cursor` of the previous page; omit for the first page."},
    )


def page_schema(item_schema: type[ma.Schema], name: str | None = None) -> type[ma.Schema]:
    """A schema `{"items": [item...], "next_cursor": str|null}` for a list of `item_schema`."""
    name = name or item_schema.__name__.removesuffix("Schema") + "PageSchema"
    return type(
        name,
        (ma.Schema,),
        {
            "items": ma.fields.List(ma.fields.Nested(item_schema), required=True),
            "next_cursor": ma.fields.String(
                allow_none=True,
                required=True,
                metadata={"description": "Pass as `cursor` for the next page; null on the last page."},
            ),
        },
    )


def _encode_value(value):
    if isinstance(value, datetime):
        return {"dt": value.isoformat()}
    if isinstance(value, date):
        return {"d": value.isoformat()}
    return value


def _decode_value(value):
    if isinstance(value, dict) and "dt" in value:
        return datetime.fromisoformat(value["dt"])
    if isinstance(value, dict) and "d" in value:
        return date.fromisoformat(value["d"])
    return value


def encode_cursor(values: list) -> str:
    raw = json.dumps([_encode_value(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list:
    """The key values a cursor holds; a cursor we did not make answers 422."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
        if not isinstance(values, list) or len(values) != size:
            raise ValueError("wrong size")
        return [_decode_value(v) for v in values]
    except (ValueError, binascii.Error, TypeError, UnicodeDecodeError):
        abort_problem(422, errors=[{"field": "cursor", "message": "not a cursor this list gave out"}])


@dataclass
class Page:
    items: list
    next_cursor: str | None

    def as_dict(self) -> dict:
        return {"items": self.items, "next_cursor": self.next_cursor}


def paginate(stmt: Select, *, key, limit: int = DEFAULT_LIMIT, cursor: str | None = None,
             descending: bool = False, scalars: bool = True) -> Page:  # fmt: skip
    """One page of `stmt`, ordered by `key` (a column, or a tuple of columns whose last one is unique).

    `scalars=False` returns rows (for a SELECT of several entities); the key values are then read
    from the row by the key columns' names.
    """
    columns = tuple(key) if isinstance(key, tuple | list) else (key,)
    limit = max(1, min(int(limit), MAX_LIMIT))
    if cursor:
        after = decode_cursor(cursor, len(columns))
        stmt = stmt.where(_after(columns, after, descending))
    order = [c.desc() if descending else c.asc() for c in columns]
    result = db.session.execute(stmt.order_by(*order).limit(limit + 1))
    rows = list(result.scalars() if scalars else result)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more and rows:
        last = rows[-1]
        next_cursor = encode_cursor([_value(last, c, scalars) for c in columns])
    return Page(rows, next_cursor)


def _value(row, column, scalars: bool):
    name = column.key
    if scalars:
        return getattr(row, name)
    return row._mapping[column] if column in row._mapping else getattr(row[0], name)


def _after(columns, values, descending: bool):
    """(c1, c2, ...) > (v1, v2, ...) lexicographically (or <), written out for every database."""
    clauses = []
    for i, column in enumerate(columns):
        equal = [columns[j] == values[j] for j in range(i)]
        beyond = column < values[i] if descending else column > values[i]
        clauses.append(and_(*equal, beyond))
    return or_(*clauses)
