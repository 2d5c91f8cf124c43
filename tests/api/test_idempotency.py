"""Idempotency-Key on POSTs: a repeat replays the first answer (and acts once); the same key with
another request is a 422; keys are per user; a stored answer is kept at least 24 hours."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from portal import accounts
from portal.extensions import db
from portal.models import IdempotencyRecord, JobRecord
from portal.models.base import utcnow
from tests.api.conftest import api_client, token_for_email
from tests.factories import PASSWORD


def _jobs(app) -> int:
    with app.app_context():
        return len(db.session.scalars(select(JobRecord).where(JobRecord.func.like("%run_period"))).all())


def _trigger(client, key, body=None):
    return client.post(
        "/schedules/ACME/trigger", json=body or {"period": "2026-01"}, headers={"Idempotency-Key": key}
    )


def test_post_when_key_repeated_replays_first_answer_and_acts_once(app, as_role):
    client = as_role("admin")
    first = _trigger(client, "k-1")
    again = _trigger(client, "k-1")
    assert first.status_code == again.status_code == 202
    assert again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert _jobs(app) == 1


def test_post_when_key_repeated_with_same_json_in_another_order_replays(app, as_role):
    client = as_role("admin")
    headers = {"Idempotency-Key": "k-2", "Content-Type": "application/json"}
    client.post("/schedules/ACME/trigger", data='{"period": "2026-01"}', headers=headers)
    again = client.post("/schedules/ACME/trigger", data='{ "period":"2026-01" }', headers=headers)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert _jobs(app) == 1


def test_post_when_key_reused_with_other_body_answers_422(app, as_role):
    client = as_role("admin")
    _trigger(client, "k-3")
    response = _trigger(client, "k-3", {"period": "2026-02"})
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.json["errors"][0]["field"] == "Idempotency-Key"
    assert _jobs(app) == 1


def test_post_when_key_reused_on_another_endpoint_answers_422(app, as_role):
    client = as_role("admin")
    client.post("/schedules/ACME/disable", headers={"Idempotency-Key": "k-4"})
    response = client.post("/schedules/ACME/enable", headers={"Idempotency-Key": "k-4"})
    assert response.status_code == 422


def test_post_when_same_key_from_another_user_acts_again(app, tokens, as_role):
    with app.app_context():  # a second admin
        accounts.create_user(email="admin2@example.com", password=PASSWORD, role="admin")
        db.session.commit()
    other = api_client(app.test_client(), token_for_email(app, "admin2@example.com"))
    _trigger(as_role("admin"), "shared")
    response = _trigger(other, "shared")
    assert response.status_code == 202 and "Idempotent-Replayed" not in response.headers
    assert _jobs(app) == 2


def test_post_when_no_key_acts_every_time(app, as_role):
    client = as_role("admin")
    client.post("/schedules/ACME/trigger", json={"period": "2026-01"})
    client.post("/schedules/ACME/trigger", json={"period": "2026-01"})
    assert _jobs(app) == 2


def test_post_when_first_answer_stored_keeps_it_at_least_24_hours(app, as_role):
    _trigger(as_role("admin"), "k-5")
    with app.app_context():
        record = db.session.scalar(select(IdempotencyRecord))
        assert record.expires_at - record.created_at >= timedelta(hours=24)
        assert record.status == 202


def test_post_when_stored_answer_expired_acts_again(app, as_role):
    client = as_role("admin")
    _trigger(client, "k-6")
    with app.app_context():
        db.session.execute(update(IdempotencyRecord).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    response = _trigger(client, "k-6")
    assert "Idempotent-Replayed" not in response.headers
    assert _jobs(app) == 2


def test_post_when_first_answer_was_an_error_not_stored_runs_again(app, as_role):
    client = as_role("admin")
    assert _trigger(client, "k-7", {"period": "bad"}).status_code == 422
    response = _trigger(client, "k-7", {"period": "bad"})
    assert response.status_code == 422 and "Idempotent-Replayed" not in response.headers


def test_post_when_key_too_long_answers_422(as_role):
    assert _trigger(as_role("admin"), "k" * 256).status_code == 422
