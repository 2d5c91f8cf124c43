"""Cursor pagination: pages follow one another without repeats or gaps while rows are added, and a
cursor or limit we do not accept is a 422."""

from __future__ import annotations

from portal import accounts
from portal.extensions import db


def _add_customer(app, code):
    with app.app_context():
        accounts.create_customer(code=code, name=f"{code} Ltd")
        db.session.commit()


def test_customers_when_limit_one_pages_through_all_with_cursors(as_role):
    client = as_role("admin")
    first = client.get("/customers?limit=1").json
    second = client.get(f"/customers?limit=1&cursor={first['next_cursor']}").json
    assert [c["code"] for c in first["items"] + second["items"]] == ["ACME", "GLOBEX"]
    assert second["next_cursor"] is None


def test_customers_when_rows_added_between_pages_none_repeated_or_skipped(app, as_role):
    client = as_role("admin")
    for code in ("C1", "C2", "C3"):
        _add_customer(app, code)
    seen = []
    page = client.get("/customers?limit=2").json
    seen += [c["code"] for c in page["items"]]
    _add_customer(app, "LATE")  # arrives while the client is paging
    while page["next_cursor"]:
        page = client.get(f"/customers?limit=2&cursor={page['next_cursor']}").json
        seen += [c["code"] for c in page["items"]]
    assert seen == ["ACME", "GLOBEX", "C1", "C2", "C3", "LATE"]
    assert len(seen) == len(set(seen))


def test_customers_when_cursor_not_ours_answers_422_naming_it(as_role):
    response = as_role("admin").get("/customers?cursor=not-a-cursor")
    assert response.status_code == 422
    assert response.json["errors"] == [{"field": "cursor", "message": "not a cursor this list gave out"}]


def test_customers_when_limit_above_500_answers_422(as_role):
    response = as_role("admin").get("/customers?limit=501")
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "limit"
