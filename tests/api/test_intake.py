"""Line items in over the API (portal/api/intake.py): a file upload followed to its parsed result,
and JSON batches judged row by row like a file, per role and tenant, with idempotent replays."""

from __future__ import annotations

import io

from sqlalchemy import func, select

from portal import jobs
from portal.extensions import db
from portal.models import LineItem, Upload
from tests.samples import HEADER

PROBLEM = "application/problem+json"


def csv_file(prefix: str, *, bad: bool = True) -> bytes:
    rows = [f"E100,Ana,ACME,{prefix}-1,Tuition,100.00,USD,2026-02-15,Econ 101,Spring"]
    if bad:
        rows.append(f"E101,Bo,ACME,{prefix}-2,Tuition,abc,USD,2026-02-16,Econ 101,Spring")
    return (HEADER + "".join(r + "\n" for r in rows)).encode()


def item(reference: str, **fields) -> dict:
    return {
        "employee_external_id": "E100",
        "customer_code": "ACME",
        "partner_reference": reference,
        "expense_type": "tuition",
        "amount": "250.00",
        "currency": "USD",
        "service_date": "2026-02-20",
        **fields,
    }


def run_parse(world, upload_id: int) -> None:
    with world.app.app_context():
        job_id = db.session.get(Upload, upload_id).job_id
    with world.app.app_context():
        jobs.run_job(job_id)


def line_count(world, prefix: str) -> int:
    with world.app.app_context():
        return db.session.scalar(
            select(func.count(LineItem.id)).where(LineItem.partner_reference.like(f"{prefix}-%"))
        )


# --- uploads ---------------------------------------------------------------------------------------


def test_upload_is_202_with_location_and_the_parse_job_shows_counts_and_problems(world, api):
    client = api(None, world.tokens["partner_a"])
    response = client.post(
        "/uploads",
        data={"file": (io.BytesIO(csv_file("UP1")), "february.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 202
    body = response.get_json()
    assert response.headers["Location"] == body["url"] == f"/api/v1/uploads/{body['id']}"
    assert body["status"] == "received"
    run_parse(world, body["id"])
    result = client.get(body["url"]).get_json()
    assert result["status"] == "needs_review"
    assert (result["counts"]["rows_read"], result["counts"]["accepted"], result["counts"]["rejected"]) == (
        2,
        1,
        1,
    )
    [problem] = result["problems"]
    assert (problem["row"], problem["outcome"], problem["partner_reference"]) == (3, "rejected", None)
    assert [(e["field"], e["value"]) for e in problem["errors"]] == [("amount", "abc")]
    assert problem["errors"][0]["reason"]


def test_upload_problems_page_by_cursor(world, api):
    client = api(None, world.tokens["partner_a"])
    data = HEADER + "".join(
        f"E100,Ana,ACME,PG-{n},Tuition,bad{n},USD,2026-02-15,Econ,Spring\n" for n in range(3)
    )
    upload_id = client.post(
        "/uploads",
        data={"file": (io.BytesIO(data.encode()), "pages.csv")},
        content_type="multipart/form-data",
    ).get_json()["id"]
    run_parse(world, upload_id)
    first = client.get(f"/uploads/{upload_id}?limit=2").get_json()
    second = client.get(f"/uploads/{upload_id}?limit=2&cursor={first['next_cursor']}").get_json()
    assert [p["row"] for p in first["problems"] + second["problems"]] == [2, 3, 4]
    assert second["next_cursor"] is None


def test_same_file_again_is_a_409_problem_naming_the_first(world, api):
    client = api(None, world.tokens["partner_a"])
    data = csv_file("DUP", bad=False)
    first = client.post(
        "/uploads", data={"file": (io.BytesIO(data), "a.csv")}, content_type="multipart/form-data"
    )
    again = client.post(
        "/uploads", data={"file": (io.BytesIO(data), "b.csv")}, content_type="multipart/form-data"
    )
    assert (again.status_code, again.mimetype) == (409, PROBLEM)
    assert f"identical to upload #{first.get_json()['id']}" in again.get_json()["detail"]


def test_empty_file_or_no_file_is_422(world, api):
    client = api(None, world.tokens["partner_a"])
    empty = client.post(
        "/uploads", data={"file": (io.BytesIO(b""), "e.csv")}, content_type="multipart/form-data"
    )
    assert (empty.status_code, empty.mimetype) == (422, PROBLEM)
    assert "is empty" in empty.get_json()["detail"]
    missing = client.post("/uploads", data={}, content_type="multipart/form-data")
    assert (missing.status_code, missing.get_json()["errors"][0]["field"]) == (422, "file")


def test_upload_over_the_size_limit_is_413(fresh_world, api):
    fresh_world.app.config["MAX_CONTENT_LENGTH"] = 1024
    client = api(None, fresh_world.tokens["partner_a"])
    data = {"file": (io.BytesIO(b"x" * 4096), "big.csv")}
    response = client.post("/uploads", data=data, content_type="multipart/form-data")
    assert (response.status_code, response.mimetype) == (413, PROBLEM)


def test_upload_by_contact_or_admin_is_403_without_token_401(world, api):
    for role in ("customer_a", "admin"):
        data = {"file": (io.BytesIO(b"a,b\n1,2\n"), "x.csv")}
        assert api(None, world.tokens[role]).post("/uploads", data=data).status_code == 403
    assert api(None, None).post("/uploads", data={}).status_code == 401


def test_upload_of_another_partner_is_404_and_admin_sees_it(world, api):
    other = world.ids["B"]["upload_id"]
    response = api(None, world.tokens["partner_a"]).get(f"/uploads/{other}")
    assert (response.status_code, response.mimetype) == (404, PROBLEM)
    assert api(None, world.tokens["admin"]).get(f"/uploads/{other}").get_json()["id"] == other
    assert api(None, world.tokens["customer_a"]).get(f"/uploads/{other}").status_code == 403


# --- line-item batches ------------------------------------------------------------------------------


def test_batch_of_good_items_is_imported_with_every_row_accepted(world, api):
    response = api(None, world.tokens["partner_a"]).post(
        "/line-items", json={"items": [item("BG-1"), item("BG-2", amount=12.5, employee_external_id="E101")]}
    )
    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"] == body["url"]
    assert body["status"] == "imported" and body["counts"]["imported"] == 2
    assert [(r["row"], r["outcome"], r["errors"]) for r in body["rows"]] == [
        (1, "accepted", []),
        (2, "accepted", []),
    ]
    assert line_count(world, "BG") == 2


def test_batch_with_bad_rows_says_per_row_field_and_reason_and_waits_for_review(world, api):
    items = [
        item("BB-1"),
        item("BB-2", amount="12.345"),
        item("BB-3", expense_type="lunch", currency="XYZ"),
        item("BB-4", employee_external_id="E999"),
        item("BB-5", customer_code="NOBODY"),
    ]
    body = api(None, world.tokens["partner_a"]).post("/line-items", json={"items": items}).get_json()
    assert body["status"] == "needs_review"
    rows = body["rows"]
    assert [r["outcome"] for r in rows] == ["accepted", "rejected", "rejected", "quarantined", "rejected"]
    assert [e["field"] for e in rows[1]["errors"]] == ["amount"]
    assert {e["field"] for e in rows[2]["errors"]} == {"expense_type", "currency"}
    assert all(e["reason"] for r in rows for e in r["errors"])
    assert rows[4]["errors"][0]["field"] == "customer_code"
    assert line_count(world, "BB") == 0  # waits for the partner, as a file would


def test_batch_rows_match_what_the_same_rows_in_a_file_get(world, api):
    """The batch's per-row outcome for a value is the file's for the same value."""
    client = api(None, world.tokens["partner_a"])
    file_rows = HEADER + "E100,Ana,ACME,EQ-1,Tuition,1.2.3,USD,2026-02-15,Econ,Spring\n"
    upload_id = client.post(
        "/uploads",
        data={"file": (io.BytesIO(file_rows.encode()), "eq.csv")},
        content_type="multipart/form-data",
    ).get_json()["id"]
    run_parse(world, upload_id)
    from_file = client.get(f"/uploads/{upload_id}").get_json()["problems"][0]["errors"]
    batch = client.post("/line-items", json={"items": [item("EQ-2", amount="1.2.3")]}).get_json()
    assert batch["rows"][0]["errors"] == from_file


def test_batch_of_10001_items_is_refused_as_a_problem(world, api):
    items = [item(f"BIG-{n}") for n in range(10_001)]
    response = api(None, world.tokens["partner_a"]).post("/line-items", json={"items": items})
    assert response.status_code in (413, 422) and response.mimetype == PROBLEM
    assert response.status_code == 413 or response.get_json()["errors"][0]["field"] == "items"
    assert line_count(world, "BIG") == 0


def test_batch_with_an_unknown_field_or_a_nested_value_is_422(world, api):
    client = api(None, world.tokens["partner_a"])
    unknown = client.post("/line-items", json={"items": [item("UF-1", ammount="1")]})
    assert (unknown.status_code, unknown.mimetype) == (422, PROBLEM)
    assert unknown.get_json()["errors"][0]["field"] == "items.0.ammount"
    nested = client.post("/line-items", json={"items": [item("UF-2", amount={"value": 1})]})
    assert nested.status_code == 422


def test_batch_replayed_with_idempotency_key_creates_one_upload(world, api):
    client = api(None, world.tokens["partner_a"])
    headers = {"Idempotency-Key": "batch-42"}
    payload = {"items": [item("ID-1")]}
    first = client.post("/line-items", json=payload, headers=headers)
    second = client.post("/line-items", json=payload, headers=headers)
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.get_json() == first.get_json() and second.headers["Location"] == first.headers["Location"]
    assert line_count(world, "ID") == 1
    changed = client.post("/line-items", json={"items": [item("ID-2")]}, headers=headers)
    assert (changed.status_code, changed.mimetype) == (422, PROBLEM)


def test_identical_batch_without_key_is_409(world, api):
    client = api(None, world.tokens["partner_a"])
    payload = {"items": [item("SAME-1")]}
    assert client.post("/line-items", json=payload).status_code == 201
    again = client.post("/line-items", json=payload)
    assert (again.status_code, again.mimetype) == (409, PROBLEM)


def test_upload_replayed_with_idempotency_key_is_received_once(world, api):
    client = api(None, world.tokens["partner_a"])
    headers = {"Idempotency-Key": "file-7"}
    data = csv_file("IDF", bad=False)
    first = client.post("/uploads", data={"file": (io.BytesIO(data), "f.csv")}, headers=headers)
    second = client.post("/uploads", data={"file": (io.BytesIO(data), "f.csv")}, headers=headers)
    assert (first.status_code, second.status_code) == (202, 202)
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.headers["Location"] == first.headers["Location"]


def test_batch_by_contact_or_admin_is_403(world, api):
    for role in ("customer_a", "admin"):
        assert (
            api(None, world.tokens[role]).post("/line-items", json={"items": [item("R-1")]}).status_code
            == 403
        )
