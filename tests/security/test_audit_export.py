"""The audit CSV export is never cut off: every matching event exactly once across batches, odd
Unicode and huge details kept, and a failing read is an error, never a 200 that merely stops."""

from __future__ import annotations

import csv
import io
import json
import logging

import pytest

from portal.admin import audit_views
from portal.core import audit
from portal.extensions import db

BULK = 1234  # more than two export batches


def record_events(app, action: str, details_list: list[dict]) -> None:
    with app.app_context():
        for details in details_list:
            audit.record(action, subject_type="Test", subject_id="1", details=details)
        db.session.commit()


def export(world, **filters) -> list[dict]:
    csv.field_size_limit(10_000_000)  # the huge event's details are one cell
    response = world.client("admin").get("/admin/audit.csv", query_string=filters)
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(response.get_data().decode("utf-8"))))


@pytest.fixture(scope="module")
def bulk(world):
    record_events(world.app, "test.bulk", [{"n": n} for n in range(BULK)])
    return world


def test_export_of_several_batches_has_every_event_once(bulk):
    rows = export(bulk, action="test.bulk")
    assert sorted(json.loads(row["details"])["n"] for row in rows) == list(range(BULK))


def test_export_of_several_batches_is_newest_first(bulk):
    seqs = [int(row["seq"]) for row in export(bulk, action="test.bulk")]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == BULK


ODD = [
    {"text": "Zoë — naïve café 🧾💸 𝔘𝔫𝔦𝔠𝔬𝔡𝔢"},
    {"text": "\u202eevil\u202c right-to-left override, \u200bzero width, e\u0301 combining"},
    {"text": "line\u2028separator\u2029paragraph\r\nCRLF, \"quotes\", 'single', comma, semicolon;"},
    {"text": '=HYPERLINK("http://x")', "amount": "-1,000.50", "empty": "", "none": None},
    {"blob": "x" * 3_000_000},  # one huge event: a chunk of its own
    {"nested": {"deep": [[[{"k": ["v"] * 100}]]]}, "ключ": "значение", "鍵": "値"},
]


def test_export_with_odd_unicode_and_huge_details_keeps_each_exactly(world):
    record_events(world.app, "test.odd", ODD)
    rows = export(world, action="test.odd")
    assert [json.loads(row["details"]) for row in reversed(rows)] == ODD


# SQLite only: PostgreSQL's jsonb cannot hold a NUL at all, so there is nothing to export there.
@pytest.mark.parametrize("world", ["sqlite"], indirect=True)
def test_export_with_nul_in_details_is_complete_on_sqlite(world):
    record_events(world.app, "test.sqlite-nul", [{"text": "nul\x00here"}, {"after": "the NUL"}])
    rows = export(world, action="test.sqlite-nul")
    assert [json.loads(row["details"]) for row in reversed(rows)] == [
        {"text": "nul\x00here"},
        {"after": "the NUL"},
    ]


def test_export_when_the_first_read_fails_answers_500_not_a_cut_file(world, monkeypatch):
    def broken(where, before):
        raise RuntimeError("database went away")

    monkeypatch.setattr(audit_views, "_export_batch", broken)
    monkeypatch.setitem(world.app.config, "PROPAGATE_EXCEPTIONS", False)
    response = world.client("admin").get("/admin/audit.csv")
    assert response.status_code == 500
    assert "seq,occurred_at" not in response.get_data(as_text=True)


def test_export_when_a_later_read_fails_is_aborted_and_logged(bulk, monkeypatch, caplog):
    real = audit_views._export_batch
    calls = []

    def fails_second_time(where, before):
        calls.append(before)
        if len(calls) == 2:
            raise RuntimeError("database went away")
        return real(where, before)

    monkeypatch.setattr(audit_views, "_export_batch", fails_second_time)
    response = bulk.client("admin").get("/admin/audit.csv", query_string={"action": "test.bulk"})
    assert response.status_code == 200  # the header was sent with the first batch
    with caplog.at_level(logging.ERROR), pytest.raises(RuntimeError, match="database went away"):
        response.get_data()  # the download fails instead of ending as if complete
    assert f"Audit CSV export failed after {audit_views.EXPORT_BATCH} events" in caplog.text


@pytest.mark.parametrize("subject_id", ["²", "99999999999", "-1", "١٢"])
def test_export_with_a_subject_id_no_object_can_have_is_complete(world, subject_id):
    with world.app.app_context():
        audit.record("test.subject", subject_type="Invoice", subject_id=subject_id)
        db.session.commit()
    rows = export(world, action="test.subject", subject_id=subject_id)
    assert [(row["subject_id"], row["subject"]) for row in rows] == [(subject_id, f"Invoice {subject_id}")]
