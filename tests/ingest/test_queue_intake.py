"""Queue intake against a real moto server process (S3 and SQS): announced files become uploads
once, poison messages reach the dead-letter queue, and an S3 outage leaves the message for later."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import quote_plus

import pytest
from sqlalchemy import func, select

from portal import jobs
from portal.extensions import db
from portal.ingest.queue_intake import (
    FileNotice,
    MessageRefused,
    consume,
    intake_from_config,
    parse_message,
)
from portal.models import AuditEvent, LineItem, QueueMessage, Upload, UploadStatus
from tests.backends import free_port
from tests.samples import ROW1, ROW2, ROW3, csv_bytes

FILE = csv_bytes(ROW1, ROW2, ROW3)


class Intake:
    """A bucket, an intake queue and its dead-letter queue on the moto server; the app reads them."""

    def __init__(self, app, endpoint):
        import boto3

        self.app = app
        self.endpoint = endpoint
        self.s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        self.sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
        name = uuid.uuid4().hex[:12]
        self.bucket = f"partner-drop-{name}"
        self.s3.create_bucket(Bucket=self.bucket)
        self.queue_url = self.sqs.create_queue(QueueName=f"intake-{name}")["QueueUrl"]
        self.dead_letter_url = self.sqs.create_queue(QueueName=f"intake-dlq-{name}")["QueueUrl"]
        app.config.update(
            SQS_QUEUE_URL=self.queue_url,
            SQS_DEAD_LETTER_QUEUE_URL=self.dead_letter_url,
            SQS_ENDPOINT_URL=endpoint,
            S3_ENDPOINT_URL=endpoint,
            AWS_REGION="us-east-1",
            SQS_MAX_RECEIVES=3,
            SQS_RETRY_SECONDS=0,  # a message left for later is visible again at once
            SQS_WAIT_SECONDS=0,
        )

    def put(self, key: str, data: bytes = FILE) -> str:
        """Store an object; returns its ETag as S3 events give it (no quotes)."""
        return self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)["ETag"].strip('"')

    def send(self, body) -> str:
        text = body if isinstance(body, str) else json.dumps(body)
        return self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=text)["MessageId"]

    def announce(self, key: str, partner: str = "state-u", data: bytes = FILE) -> str:
        self.put(key, data)
        return self.send({"bucket": self.bucket, "key": key, "partner": partner})

    def consume_once(self, **config) -> list:
        """One receive and its messages handled, as `flask sqs consume --once` does."""
        handled = []
        with self.app.app_context():
            intake = intake_from_config({**self.app.config, **config})
            consume(intake, wait_seconds=0, once=True, on_handled=handled.append)
        return handled

    def waiting(self, queue_url: str | None = None) -> int:
        """Messages in the queue, visible or in flight."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=queue_url or self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def dead_letters(self) -> list[dict]:
        return self.sqs.receive_message(
            QueueUrl=self.dead_letter_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", [])

    def uploads(self) -> list[Upload]:
        with self.app.app_context():
            return db.session.scalars(select(Upload).order_by(Upload.id)).all()

    def actions(self, prefix: str = "") -> list[AuditEvent]:
        with self.app.app_context():
            return db.session.scalars(
                select(AuditEvent).where(AuditEvent.action.startswith(prefix)).order_by(AuditEvent.seq)
            ).all()


@pytest.fixture
def intake(app, partner, moto_endpoint, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return Intake(app, moto_endpoint)


def s3_event(bucket: str, key: str, etag: str | None = None, event: str = "ObjectCreated:Put") -> dict:
    obj = {"key": quote_plus(key), "size": len(FILE)}
    if etag:
        obj["eTag"] = etag
    return {
        "Records": [
            {"eventSource": "aws:s3", "eventName": event, "s3": {"bucket": {"name": bucket}, "object": obj}}
        ]
    }


# --- message formats (no queue needed) --------------------------------------------------------


def test_parse_message_when_own_format_names_bucket_key_and_partner():
    body = json.dumps({"bucket": "drop", "key": "in/lines.csv", "partner": " State-U "})
    assert parse_message(body) == [FileNotice("drop", "in/lines.csv", "state-u")]


def test_parse_message_when_s3_event_decodes_key_and_takes_partner_from_first_folder():
    notice = parse_message(json.dumps(s3_event("drop", "state-u/Oct fees é.csv", etag="abc")))[0]
    assert (notice.key, notice.partner_slug, notice.etag, notice.filename) == (
        "state-u/Oct fees é.csv",
        "state-u",
        "abc",
        "Oct fees é.csv",
    )


def test_parse_message_when_wrapped_in_sns_reads_the_inner_event():
    envelope = {"Type": "Notification", "Message": json.dumps(s3_event("drop", "state-u/a.csv"))}
    assert parse_message(json.dumps(envelope)) == [FileNotice("drop", "state-u/a.csv", "state-u")]


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "drop"}),
        json.dumps(s3_event("drop", "state-u/a.csv", event="ObjectRemoved:Delete")),
    ],
    ids=["test-event", "object-removed"],
)
def test_parse_message_when_no_new_object_announces_nothing(body):
    assert parse_message(body) == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        (json.dumps({"bucket": "drop", "key": "a.csv"}), "does not name partner"),
        (json.dumps(s3_event("drop", "a.csv")), "does not start with a partner folder"),
        (json.dumps({"Records": [{"s3": {}}]}), "does not name a bucket"),
    ],
    ids=["bad-json", "not-object", "no-partner", "key-without-folder", "record-without-object"],
)
def test_parse_message_when_malformed_is_refused_with_reason(body, reason):
    with pytest.raises(MessageRefused, match=reason):
        parse_message(body)


# --- happy path -------------------------------------------------------------------------------


def test_consume_when_file_announced_records_upload_and_deletes_message(intake):
    message_id = intake.announce("state-u/2026-10/lines.csv")
    handled = intake.consume_once()
    assert [(h.message_id, h.outcome) for h in handled] == [(message_id, "received")]
    [upload] = intake.uploads()
    assert (upload.filename, upload.status, upload.size_bytes) == (
        "lines.csv",
        UploadStatus.RECEIVED,
        len(FILE),
    )
    assert intake.waiting() == 0


def test_consume_when_parse_job_runs_imports_the_rows(intake, app):
    intake.announce("state-u/lines.csv")
    [handled] = intake.consume_once()
    with app.app_context():
        jobs.run_job(db.session.get(Upload, handled.upload_ids[0]).job_id)
        db.session.expire_all()
        assert db.session.get(Upload, handled.upload_ids[0]).status == UploadStatus.IMPORTED
        assert db.session.scalar(select(func.count()).select_from(LineItem)) == 3


def test_consume_when_file_received_audits_the_message_and_object(intake):
    message_id = intake.announce("state-u/lines.csv")
    intake.consume_once()
    [event] = intake.actions("upload.received_from_queue")
    assert event.subject_type == "Upload"
    assert (event.details["message_id"], event.details["bucket"], event.details["key"]) == (
        message_id,
        intake.bucket,
        "state-u/lines.csv",
    )
    assert [e.action for e in intake.actions("upload.")] == ["upload.received", "upload.received_from_queue"]


def test_consume_when_s3_event_names_partner_by_folder_receives_file(intake):
    key = "state-u/October fees é+more.csv"
    etag = intake.put(key)
    intake.send(s3_event(intake.bucket, key, etag=etag))
    [handled] = intake.consume_once()
    assert handled.outcome == "received"
    [upload] = intake.uploads()
    assert upload.filename == "October fees é+more.csv"
    assert intake.waiting() == 0


def test_consume_when_s3_event_has_two_records_receives_both_files(intake):
    first, second = "state-u/a.csv", "state-u/b.csv"
    event = s3_event(intake.bucket, first, etag=intake.put(first, csv_bytes(ROW1)))
    event["Records"] += s3_event(intake.bucket, second, etag=intake.put(second, csv_bytes(ROW2)))["Records"]
    intake.send(event)
    [handled] = intake.consume_once()
    assert handled.outcome == "received"
    assert [u.filename for u in intake.uploads()] == ["a.csv", "b.csv"]
    assert handled.upload_ids == [u.id for u in intake.uploads()]


def test_consume_when_s3_event_is_not_a_new_object_deletes_it_without_upload(intake):
    intake.send(s3_event(intake.bucket, "state-u/a.csv", event="ObjectRemoved:Delete"))
    [handled] = intake.consume_once()
    assert handled.outcome == "ignored"
    assert intake.uploads() == [] and intake.waiting() == 0


# --- exactly once -----------------------------------------------------------------------------


def test_consume_when_message_redelivered_imports_once_and_deletes_it(intake):
    """The first consumer records the upload but dies before deleting the message; SQS hands the
    same message (same id) out again."""
    intake.sqs.set_queue_attributes(QueueUrl=intake.queue_url, Attributes={"VisibilityTimeout": "1"})
    message_id = intake.announce("state-u/lines.csv")
    with intake.app.app_context():
        crashing = intake_from_config(intake.app.config)
        crashing._delete = lambda message: None  # the process died right after its commit
        first = consume(crashing, wait_seconds=0, once=True)
    assert first["received"] == 1 and intake.waiting() == 1
    time.sleep(1.2)
    [again] = intake.consume_once()
    assert (again.message_id, again.outcome) == (message_id, "duplicate")
    assert len(intake.uploads()) == 1
    assert intake.waiting() == 0
    with intake.app.app_context():
        rows = db.session.scalars(select(QueueMessage)).all()
        assert [(r.message_id, r.outcome.value) for r in rows] == [(message_id, "received")]


def test_consume_when_s3_sends_the_same_event_twice_imports_once(intake):
    key = "state-u/lines.csv"
    etag = intake.put(key)
    intake.send(s3_event(intake.bucket, key, etag=etag))
    intake.send(s3_event(intake.bucket, key, etag=etag))
    handled = intake.consume_once()
    handled += intake.consume_once()  # moto may hand out one message per receive
    assert sorted(h.outcome for h in handled) == ["duplicate", "received"]
    assert len(intake.uploads()) == 1
    assert intake.waiting() == 0


def test_consume_when_same_file_under_another_key_is_not_imported_again(intake):
    intake.announce("state-u/lines.csv")
    intake.consume_once()
    intake.announce("state-u/copy-of-lines.csv")
    [second] = intake.consume_once()
    [upload] = intake.uploads()
    assert (second.outcome, second.upload_ids) == ("duplicate", [upload.id])
    with intake.app.app_context():
        hashes = db.session.scalars(select(QueueMessage.sha256)).all()
    assert hashes == [upload.sha256, upload.sha256]


# --- poison messages --------------------------------------------------------------------------


POISON = {
    "bad-json": (lambda intake: '{"bucket": ', "not valid JSON"),
    "unknown-partner": (
        lambda intake: {"bucket": intake.bucket, "key": "nobody/lines.csv", "partner": "nobody"},
        "no partner with slug 'nobody'",
    ),
    "missing-object": (
        lambda intake: {"bucket": intake.bucket, "key": "state-u/never-put.csv", "partner": "state-u"},
        "could not be read (NoSuchKey)",
    ),
}


@pytest.mark.parametrize("kind", list(POISON))
def test_consume_when_poison_message_received_max_times_moves_it_to_dead_letter_queue(intake, kind):
    body, reason = POISON[kind]
    intake.send(body(intake))
    outcomes = [h.outcome for _ in range(3) for h in intake.consume_once()]
    assert outcomes == ["refused", "refused", "dead_lettered"]
    assert intake.waiting() == 0
    [dead] = intake.dead_letters()
    assert reason in dead["MessageAttributes"]["reason"]["StringValue"]
    assert intake.uploads() == []


@pytest.mark.parametrize("kind", list(POISON))
def test_consume_when_poison_message_refused_audits_reason_each_time(intake, kind):
    body, reason = POISON[kind]
    message_id = intake.send(body(intake))
    for _ in range(3):
        intake.consume_once()
    events = intake.actions("queue.")
    assert [e.action for e in events] == ["queue.message_refused"] * 3 + ["queue.message_dead_lettered"]
    assert all(reason in e.details["reason"] and e.subject_id == message_id for e in events)
    assert [e.details["receives"] for e in events] == [1, 2, 3, 3]


def test_consume_when_poison_refused_fewer_than_max_times_leaves_it_in_the_queue(intake):
    intake.send("not json")
    [handled] = intake.consume_once()
    assert handled.outcome == "refused"
    assert intake.waiting() == 1
    assert intake.dead_letters() == []


def test_consume_when_object_too_large_is_refused_naming_the_limit(intake):
    intake.announce("state-u/lines.csv")
    [handled] = intake.consume_once(MAX_CONTENT_LENGTH=len(FILE) - 1)
    assert handled.outcome == "refused"
    assert "larger than the" in handled.reason
    assert intake.uploads() == []


def test_consume_when_no_dead_letter_queue_set_leaves_poison_to_the_redrive_policy(intake):
    intake.send("not json")
    outcomes = [h.outcome for _ in range(4) for h in intake.consume_once(SQS_DEAD_LETTER_QUEUE_URL=None)]
    assert outcomes == ["refused"] * 4
    assert intake.waiting() == 1


def test_consume_when_known_partner_file_refused_audits_it_for_that_partner(intake, partner):
    intake.send({"bucket": intake.bucket, "key": "state-u/never-put.csv", "partner": "state-u"})
    intake.consume_once()
    [event] = intake.actions("queue.")
    assert event.partner_id == partner


# --- outages ----------------------------------------------------------------------------------


def test_consume_when_s3_unreachable_leaves_message_and_next_run_imports_it(intake):
    intake.announce("state-u/lines.csv")
    dead = f"http://127.0.0.1:{free_port()}"
    [handled] = intake.consume_once(S3_ENDPOINT_URL=dead)
    assert handled.outcome == "retry"
    assert "not reachable" in handled.reason
    assert intake.uploads() == [] and intake.waiting() == 1
    assert intake.actions("queue.") == []  # an outage is not the message's fault
    [later] = intake.consume_once()
    assert later.outcome == "received"
    assert len(intake.uploads()) == 1 and intake.waiting() == 0


def test_consume_when_s3_unreachable_keeps_running_and_backs_off(intake):
    intake.announce("state-u/lines.csv")
    receives, pauses = [], []

    def stop_after_three():
        return len(receives) >= 3

    with intake.app.app_context():
        down = intake_from_config({**intake.app.config, "S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"})
        tally = consume(
            down,
            wait_seconds=0,
            should_stop=stop_after_three,
            sleep=pauses.append,
            on_handled=receives.append,
        )
    assert tally["retry"] == 3
    assert pauses == [1, 2, 4]
    assert intake.uploads() == [] and intake.waiting() == 1


class _Failing(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802  (the handler's protocol)
        body = b"<Error><Code>ServiceUnavailable</Code><Message>Try again later.</Message></Error>"
        self.send_response(503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_consume_when_s3_answers_503_leaves_message_for_a_retry(intake):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        intake.announce("state-u/lines.csv")
        [handled] = intake.consume_once(S3_ENDPOINT_URL=f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        server.server_close()
    assert handled.outcome == "retry"
    assert intake.waiting() == 1 and intake.actions("queue.") == []


def test_consume_when_sqs_unreachable_reports_it_without_raising(intake):
    intake.announce("state-u/lines.csv")
    with intake.app.app_context():
        down = intake_from_config(
            {**intake.app.config, "SQS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
        )
        tally = consume(down, wait_seconds=0, once=True)
    assert dict(tally) == {"unreachable": 1}
    assert intake.uploads() == [] and intake.waiting() == 1


def test_consume_when_stopped_mid_batch_releases_the_messages_not_handled(intake):
    intake.announce("state-u/a.csv", data=csv_bytes(ROW1))
    intake.announce("state-u/b.csv", data=csv_bytes(ROW2))
    handled = []
    with intake.app.app_context():
        batch = intake_from_config(intake.app.config)
        received = batch.receive(0)
        while len(received) < 2:  # moto may hand out fewer than asked for per receive
            received += batch.receive(0)
        batch.receive = lambda wait_seconds: received
        consume(batch, wait_seconds=0, should_stop=lambda: len(handled) >= 1, on_handled=handled.append)
    assert [h.outcome for h in handled] == ["received"]
    [next_one] = intake.consume_once()
    assert next_one.outcome == "received"
    assert len(intake.uploads()) == 2


# --- the command ------------------------------------------------------------------------------


def test_cli_consume_once_receives_the_file_and_prints_the_upload(intake, runner):
    message_id = intake.announce("state-u/lines.csv")
    result = runner.invoke(args=["sqs", "consume", "--once", "--wait-seconds", "0"])
    assert result.exit_code == 0, result.output
    [upload] = intake.uploads()
    assert f"{message_id}: received (upload #{upload.id})" in result.output
    assert "Done: 1 received." in result.output


def test_cli_consume_when_no_queue_configured_explains(app, runner):
    app.config["SQS_QUEUE_URL"] = None
    result = runner.invoke(args=["sqs", "consume", "--once"])
    assert result.exit_code == 1
    assert "set SQS_QUEUE_URL or pass --queue URL" in result.output


def test_cli_consume_when_sent_sigterm_finishes_and_exits_cleanly(intake, app, tmp_path):
    """The consumer as operators run it: its own process, stopped by SIGTERM after its work."""
    root = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "STORAGE_URL": app.config["STORAGE_URL"],
        "SECRET_KEY": "test",
        "PORTAL_INSTANCE_PATH": str(tmp_path),
        "EMBEDDED_WORKER": "false",
        "PYTHONPATH": str(root),
        "SQS_QUEUE_URL": intake.queue_url,
        "SQS_ENDPOINT_URL": intake.endpoint,
        "S3_ENDPOINT_URL": intake.endpoint,
    }
    if app.config["REDIS_URL"]:
        env["REDIS_URL"] = app.config["REDIS_URL"]
    intake.announce("state-u/lines.csv")
    log = tmp_path / "consumer.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "portal", "sqs", "consume", "--wait-seconds", "1"],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while not intake.uploads() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert len(intake.uploads()) == 1, log.read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    output = log.read_text()
    assert "SIGTERM: stopping after the current message" in output
    assert "Done: 1 received." in output
    assert intake.waiting() == 0
