"""One pager for every list: the page number from the query string (portal.web.inputs), the
arithmetic from Flask-SQLAlchemy's `Pagination` (`db.paginate` for a statement)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import Select

from portal.extensions import db
from portal.web.inputs import page_arg


@dataclass(frozen=True)
class Page:
    """One page of a list: its rows, its number, how many pages there are (at least 1, so an empty
    list still shows "page 1 of 1"), and how many rows in all."""

    items: Sequence[Any]
    page: int
    pages: int
    total: int


class _Counted(Pagination):
    """A Pagination over a function taking `limit` and `offset`, with the total already known
    (a domain query such as `reports.problem_rows` or `queries.invoice_lines`)."""

    def _query_items(self) -> list[Any]:
        return list(self._query_args["fetch"](limit=self.per_page, offset=self._query_offset))

    def _query_count(self) -> int:
        return self._query_args["total"]


def _page(result: Pagination) -> Page:
    return Page(result.items, result.page, max(result.pages, 1), result.total or 0)


def _clamped(make: Callable[[int], Pagination], arg: str, clamp: bool) -> Page:
    """The requested page; with `clamp`, past the last page means the last page."""
    result = make(page_arg(arg))
    if clamp and result.page > max(result.pages, 1):
        result = make(max(result.pages, 1))
    return _page(result)


def paginate(stmt: Select, *, per_page: int, arg: str = "page", clamp: bool = False) -> Page:
    """The page the query string asks for (`?page=`, or `arg`) of a select of one entity.

    A page number that is not one we accept answers 400 (`page_arg`). A page past the last one is
    empty, or with `clamp` the last page instead.
    """
    return _clamped(
        lambda page: db.paginate(stmt, page=page, per_page=per_page, max_per_page=None, error_out=False),
        arg,
        clamp,
    )


def paginate_rows(
    fetch: Callable[..., Sequence[Any]], *, total: int, per_page: int, arg: str = "page", clamp: bool = False
) -> Page:
    """Like `paginate`, for rows read by `fetch(limit=, offset=)` when the total is already known."""
    return _clamped(
        lambda page: _Counted(
            page=page, per_page=per_page, max_per_page=None, error_out=False, fetch=fetch, total=total
        ),
        arg,
        clamp,
    )
