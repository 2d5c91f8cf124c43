"""Queue intake: an SQS message names a partner file in S3; fetch it and receive it as an upload.
The same path as the upload page (`receive.receive_upload`); a redelivered message never imports twice.

Three kinds of failure are kept apart. A message that can never be imported as it is (bad JSON, an
unknown partner, a missing or oversized object) is refused, logged and audited on every receive,
and moved to the dead-letter queue at its SQS_MAX_RECEIVES-th receive. S3 or our storage being
unreachable is nobody's fault: the message is left for another try and the consumer backs off.
"""

from __future__ import annotations

import json
import logging
import posixpath
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO
from urllib.parse import unquote_plus

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal.core import audit
from portal.extensions import db
from portal.ingest.receive import UploadRefused, receive_upload
from portal.models import Partner, QueueMessage, QueueOutcome

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
# SQS refuses a message attribute value over 256 KB; a reason is a sentence, keep it one.
REASON_CHARS = 1000
# S3 answers that mean "not now" rather than "never" (the rest of 4xx is the message's problem).
S3_TRANSIENT_CODES = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling"}


class MessageRefused(Exception):
    """The message cannot be imported as it is (poison): retried until SQS_MAX_RECEIVES, then
    dead-lettered. `partner_id` is the partner it named, when known, for the audit event."""

    def __init__(self, reason: str, *, partner_id: int | None = None):
        super().__init__(reason)
        self.partner_id = partner_id


class IntakeUnavailable(Exception):
    """S3 or our storage could not be reached: not the message's fault, so it is tried again later."""


@dataclass(frozen=True)
class FileNotice:
    """One file a message announces: where it is and whose it is."""

    bucket: str
    key: str
    partner_slug: str
    etag: str | None = None
    index: int = 0  # its place among the records of an S3 event (0 for our own format)

    @property
    def filename(self) -> str:
        return posixpath.basename(self.key) or self.key

    @property
    def where(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def _etag(value) -> str | None:
    """S3 events give the ETag bare, GetObject in quotes: keep it bare so the two compare."""
    if not isinstance(value, str):
        return None
    return value.strip().strip('"')[:128] or None


def parse_message(body: str) -> list[FileNotice]:
    """The files a message body announces (raises MessageRefused for one that names none properly).

    Accepts our own `{"bucket", "key", "partner"[, "etag"]}`, an S3 event notification
    (`{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name"}, "object": {"key"}}}]}`,
    the partner being the key's first folder), and either wrapped in an SNS notification. S3's
    `s3:TestEvent` and events other than ObjectCreated announce nothing: an empty list.
    """
    try:
        data = json.loads(body)
    except (TypeError, ValueError) as exc:
        raise MessageRefused(f"the message is not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise MessageRefused("the message is not a JSON object")
    if data.get("Type") == "Notification" and isinstance(data.get("Message"), str):
        return parse_message(data["Message"])  # S3 -> SNS -> SQS: the event is inside the envelope
    if data.get("Event") == "s3:TestEvent":
        return []
    if "Records" in data:
        return _s3_event(data["Records"])
    missing = [name for name in ("bucket", "key", "partner") if not _text(data.get(name))]
    if missing:
        raise MessageRefused(
            f"the message does not name {', '.join(missing)} "
            '(expected {"bucket": ..., "key": ..., "partner": ...} or an S3 event notification)'
        )
    return [
        FileNotice(
            data["bucket"].strip(), data["key"], data["partner"].strip().lower(), _etag(data.get("etag"))
        )
    ]


def _text(value) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _s3_event(records) -> list[FileNotice]:
    if not isinstance(records, list) or not records:
        raise MessageRefused("the S3 event notification has no records")
    notices = []
    for index, record in enumerate(records):
        try:
            event = record.get("eventName") or "ObjectCreated:"
            bucket = record["s3"]["bucket"]["name"]
            raw_key = record["s3"]["object"]["key"]
            etag = record["s3"]["object"].get("eTag")
        except (AttributeError, KeyError, TypeError) as exc:
            raise MessageRefused(
                f"S3 event record {index + 1} does not name a bucket and an object key"
            ) from exc
        if not (_text(bucket) and _text(raw_key)):
            raise MessageRefused(f"S3 event record {index + 1} does not name a bucket and an object key")
        if not str(event).startswith("ObjectCreated:"):
            log.info("S3 event %s for s3://%s/%s ignored: only new objects are files", event, bucket, raw_key)
            continue
        key = unquote_plus(raw_key)  # S3 events URL-encode keys ("a+b%C3%A9.csv" is "a bé.csv")
        folder, slash, _ = key.partition("/")
        if not slash or not folder:
            raise MessageRefused(
                f"the object key {key!r} does not start with a partner folder (<partner-slug>/<file>)"
            )
        notices.append(FileNotice(bucket, key, folder.strip().lower(), _etag(etag), index))
    return notices


def _is_transient(exc) -> bool:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    return status >= 500 or status == 429 or error.get("Code") in S3_TRANSIENT_CODES


def fetch_object(s3, notice: FileNotice, max_bytes: int) -> tuple[BinaryIO, str | None]:
    """The object's bytes, streamed into a spool (memory up to 8 MB, then disk), and its ETag.

    Raises MessageRefused for a missing, unreadable or oversized object, IntakeUnavailable when
    S3 does not answer or answers 5xx (the connection dropping mid-download included).
    """
    from botocore.exceptions import BotoCoreError, ClientError  # boto3 is slow to import: only here

    try:
        obj = s3.get_object(Bucket=notice.bucket, Key=notice.key)
    except ClientError as exc:
        if _is_transient(exc):
            raise IntakeUnavailable(f"S3 answered {exc} for {notice.where}") from exc
        code = exc.response.get("Error", {}).get("Code") or "error"
        raise MessageRefused(f"{notice.where} could not be read ({code})") from exc
    except BotoCoreError as exc:
        raise IntakeUnavailable(f"S3 is not reachable for {notice.where}: {exc}") from exc
    body = obj["Body"]
    limit_mb = max_bytes // (1024 * 1024)
    if (obj.get("ContentLength") or 0) > max_bytes:
        body.close()
        raise MessageRefused(f"{notice.where} is larger than the {limit_mb} MB limit")
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115  (returned open)
    size = 0
    try:
        while chunk := body.read(CHUNK):
            size += len(chunk)
            if size > max_bytes:  # ContentLength lied or was absent: never spool more than the limit
                raise MessageRefused(f"{notice.where} is larger than the {limit_mb} MB limit")
            spool.write(chunk)
    except MessageRefused:
        spool.close()
        raise
    except (BotoCoreError, OSError) as exc:
        spool.close()
        raise IntakeUnavailable(f"reading {notice.where} from S3 failed: {exc}") from exc
    finally:
        body.close()
    spool.seek(0)
    return spool, _etag(obj.get("ETag"))


@dataclass
class Handled:
    """What became of one message: `outcome` is received, duplicate, ignored, refused,
    dead_lettered or retry; `upload_ids` the uploads its files are (new or earlier)."""

    message_id: str
    outcome: str
    upload_ids: list[int] = field(default_factory=list)
    reason: str | None = None


class QueueIntake:
    """One queue's consumer: receive messages, turn each announced file into an upload, and delete
    the message only once its uploads are committed."""

    def __init__(
        self,
        *,
        sqs,
        s3,
        queue_url: str,
        max_bytes: int,
        dead_letter_url: str | None = None,
        max_receives: int = 5,
        retry_seconds: int = 60,
    ):
        self.sqs, self.s3 = sqs, s3
        self.queue_url = queue_url
        self.dead_letter_url = dead_letter_url
        self.max_receives = max(1, max_receives)
        self.max_bytes = max_bytes
        self.retry_seconds = retry_seconds

    # --- SQS -----------------------------------------------------------------------------------

    def receive(self, wait_seconds: int, max_messages: int = 10) -> list[dict]:
        """Long-poll the queue; raises botocore's errors when SQS cannot be reached."""
        answer = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["ApproximateReceiveCount"],
        )
        return answer.get("Messages", [])

    def release(self, messages: list[dict]) -> None:
        """Make received messages visible again at once (we stop before handling them)."""
        for message in messages:
            self._set_visibility(message, 0)

    def _set_visibility(self, message: dict, seconds: int) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.sqs.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=seconds
            )
        except (BotoCoreError, ClientError) as exc:  # it comes back after the queue's own timeout
            log.warning("queue message %s: visibility not changed: %s", message.get("MessageId"), exc)

    def _delete(self, message: dict) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        except (BotoCoreError, ClientError) as exc:
            # Its uploads are committed: when it comes back it is recognised and deleted then.
            log.warning("queue message %s handled but not deleted: %s", message.get("MessageId"), exc)

    # --- one message ---------------------------------------------------------------------------

    def handle(self, message: dict) -> Handled:
        """Receive the files a message announces, then delete it; or refuse it, or leave it for later."""
        message_id = message["MessageId"]
        try:
            return self._handle(message)
        except Exception as exc:
            # The database, SQS refusing the dead-letter copy, or a bug: the message is not at fault,
            # and one message must not stop the consumer. It comes back after the retry delay.
            log.exception("queue message %s failed; left for a retry", message_id)
            db.session.rollback()
            self._set_visibility(message, self.retry_seconds)
            return Handled(message_id, "retry", reason=f"{type(exc).__name__}: {exc}")

    def _handle(self, message: dict) -> Handled:
        message_id = message["MessageId"]
        try:
            notices = parse_message(message.get("Body", ""))
            results = [self._receive_file(message_id, notice) for notice in notices]
        except MessageRefused as exc:
            db.session.rollback()
            return self._refuse(message, exc)
        except IntakeUnavailable as exc:
            db.session.rollback()
            log.warning("queue message %s left for a retry in %ss: %s", message_id, self.retry_seconds, exc)
            self._set_visibility(message, self.retry_seconds)
            return Handled(message_id, "retry", reason=str(exc))
        self._delete(message)
        if not results:
            log.info("queue message %s announces no new file; deleted", message_id)
            return Handled(message_id, "ignored")
        outcomes = {outcome for outcome, _ in results}
        outcome = "received" if QueueOutcome.RECEIVED in outcomes else "duplicate"
        return Handled(message_id, outcome, [upload_id for _, upload_id in results])

    def _receive_file(self, message_id: str, notice: FileNotice) -> tuple[QueueOutcome, int]:
        seen = self._remembered(message_id, notice.index)
        if seen is not None:
            log.info(
                "queue message %s (%s) redelivered: already upload #%s, not imported again",
                message_id, notice.where, seen.upload_id,
            )  # fmt: skip
            return QueueOutcome.DUPLICATE, seen.upload_id
        partner = db.session.scalar(select(Partner).where(Partner.slug == notice.partner_slug))
        if partner is None:
            raise MessageRefused(f"no partner with slug {notice.partner_slug!r} (for {notice.where})")
        try:
            return self._receive_partner_file(message_id, notice, partner)
        except MessageRefused as exc:  # the partner's file: its audit event goes to the partner's trail
            exc.partner_id = partner.id
            raise

    def _receive_partner_file(
        self, message_id: str, notice: FileNotice, partner: Partner
    ) -> tuple[QueueOutcome, int]:
        if notice.etag:
            earlier = self._same_object(partner.id, notice.bucket, notice.key, notice.etag)
            if earlier is not None:
                return self._remember_duplicate(
                    message_id, notice, partner, earlier.upload_id, earlier.sha256
                )
        stream, etag = fetch_object(self.s3, notice, self.max_bytes)
        with stream:
            try:
                upload = receive_upload(partner, stream, notice.filename, user=None, max_bytes=self.max_bytes)
            except UploadRefused as exc:
                if exc.unavailable:
                    raise IntakeUnavailable(str(exc)) from exc
                if exc.existing is not None:
                    return self._remember_duplicate(
                        message_id, notice, partner, exc.existing.id, exc.existing.sha256, etag=etag
                    )
                raise MessageRefused(str(exc)) from exc
        self._record(message_id, notice, partner, upload.id, upload.sha256, etag, QueueOutcome.RECEIVED)
        audit.record(
            "upload.received_from_queue",
            subject=upload,
            details={"message_id": message_id, "bucket": notice.bucket, "key": notice.key, "etag": etag},
        )
        upload_id = upload.id
        if not self._commit(message_id, notice):
            return QueueOutcome.DUPLICATE, self._remembered(message_id, notice.index).upload_id
        log.info("queue message %s: %s received as upload #%s", message_id, notice.where, upload_id)
        return QueueOutcome.RECEIVED, upload_id

    def _remembered(self, message_id: str, index: int) -> QueueMessage | None:
        return db.session.scalar(
            select(QueueMessage).where(
                QueueMessage.message_id == message_id, QueueMessage.record_index == index
            )
        )

    def _same_object(self, partner_id: int, bucket: str, key: str, etag: str) -> QueueMessage | None:
        return db.session.scalar(
            select(QueueMessage)
            .where(
                QueueMessage.partner_id == partner_id,
                QueueMessage.bucket == bucket,
                QueueMessage.object_key == key,
                QueueMessage.etag == etag,
            )
            .order_by(QueueMessage.id)
            .limit(1)
        )

    def _remember_duplicate(
        self, message_id, notice, partner, upload_id, sha256, *, etag=None
    ) -> tuple[QueueOutcome, int]:
        self._record(message_id, notice, partner, upload_id, sha256, etag, QueueOutcome.DUPLICATE)
        if self._commit(message_id, notice):
            log.info(
                "queue message %s: %s is the same file as upload #%s; not imported again",
                message_id, notice.where, upload_id,
            )  # fmt: skip
        return QueueOutcome.DUPLICATE, upload_id

    @staticmethod
    def _record(message_id, notice, partner, upload_id, sha256, etag, outcome) -> None:
        """Remember the message's file and the upload it became (or already was)."""
        db.session.add(
            QueueMessage(
                message_id=message_id,
                record_index=notice.index,
                bucket=notice.bucket,
                object_key=notice.key,
                etag=etag or notice.etag,
                sha256=sha256,
                partner_id=partner.id,
                upload_id=upload_id,
                outcome=outcome,
            )
        )

    def _commit(self, message_id: str, notice: FileNotice) -> bool:
        """Commit; False when another consumer recorded this message's file first (its row stands)."""
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            if self._remembered(message_id, notice.index) is None:
                raise
            log.info(
                "queue message %s (%s) was received by another consumer meanwhile", message_id, notice.where
            )
            return False
        return True

    # --- poison --------------------------------------------------------------------------------

    def _refuse(self, message: dict, exc: MessageRefused) -> Handled:
        message_id = message["MessageId"]
        reason = str(exc)[:REASON_CHARS]
        receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        last = receives >= self.max_receives
        log.warning(
            "queue message %s refused (receive %d of %d): %s", message_id, receives, self.max_receives, reason
        )
        details = {
            "message_id": message_id,
            "reason": reason,
            "receives": receives,
            "max_receives": self.max_receives,
        }
        audit.record(
            "queue.message_refused",
            subject_type="QueueMessage",
            subject_id=message_id[:64],
            partner_id=exc.partner_id,
            details=details,
        )
        db.session.commit()
        if not last:
            self._set_visibility(message, self.retry_seconds)
            return Handled(message_id, "refused", reason=reason)
        if not self.dead_letter_url:
            log.error(
                "queue message %s refused %d times and no SQS_DEAD_LETTER_QUEUE_URL is set: "
                "left to the queue's own redrive policy",
                message_id, receives,
            )  # fmt: skip
            self._set_visibility(message, self.retry_seconds)
            return Handled(message_id, "refused", reason=reason)
        self.sqs.send_message(
            QueueUrl=self.dead_letter_url,
            MessageBody=message.get("Body", ""),
            MessageAttributes={
                "reason": {"DataType": "String", "StringValue": reason},
                "source_message_id": {"DataType": "String", "StringValue": message_id},
                "receives": {"DataType": "Number", "StringValue": str(receives)},
            },
        )
        self._delete(message)
        audit.record(
            "queue.message_dead_lettered",
            subject_type="QueueMessage",
            subject_id=message_id[:64],
            partner_id=exc.partner_id,
            details={**details, "dead_letter_queue": self.dead_letter_url},
        )
        db.session.commit()
        log.error("queue message %s moved to the dead-letter queue: %s", message_id, reason)
        return Handled(message_id, "dead_lettered", reason=reason)


def backoff_seconds(failures: int, cap: int = 60) -> int:
    """1, 2, 4 ... seconds after consecutive failures, at most `cap`."""
    return min(cap, 2 ** max(0, failures - 1))


def consume(
    intake: QueueIntake,
    *,
    wait_seconds: int,
    once: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
    sleep: Callable[[float], None] = time.sleep,
    on_handled: Callable[[Handled], None] | None = None,
) -> Counter:
    """Receive and handle messages until `should_stop()` (checked between messages), or after one
    receive when `once`. Returns how many messages ended each way. SQS or S3 being unreachable is
    logged and waited out with a growing pause; it never ends the loop."""
    from botocore.exceptions import BotoCoreError, ClientError

    tally: Counter = Counter()
    failures = 0
    while not should_stop():
        try:
            messages = intake.receive(wait_seconds)
        except (BotoCoreError, ClientError) as exc:
            failures += 1
            tally["unreachable"] += 1
            log.error("queue %s not reachable: %s", intake.queue_url, exc)
            if once:
                break
            sleep(backoff_seconds(failures))
            continue
        for position, message in enumerate(messages):
            if should_stop():
                intake.release(messages[position:])  # another consumer may take them at once
                return tally
            handled = intake.handle(message)
            tally[handled.outcome] += 1
            if on_handled is not None:
                on_handled(handled)
            failures = failures + 1 if handled.outcome == "retry" else 0
        if once:
            break
        if failures:
            sleep(backoff_seconds(failures))
    return tally


_SQS_HOST_REGION = re.compile(r"sqs[.-]([a-z0-9-]+)\.amazonaws\.com")


def intake_from_config(config, queue_url: str | None = None) -> QueueIntake:
    """A consumer for `queue_url` (default SQS_QUEUE_URL) with clients built from the settings."""
    import boto3
    from botocore.config import Config

    queue_url = queue_url or config.get("SQS_QUEUE_URL")
    if not queue_url:
        raise ValueError("no queue to read: set SQS_QUEUE_URL or pass --queue URL")
    match = _SQS_HOST_REGION.search(queue_url)
    region = config.get("AWS_REGION") or (match.group(1) if match else "us-east-1")
    # Few, quick retries: an outage is handled by leaving the message, not by waiting inside botocore.
    retries = {"max_attempts": 2, "mode": "standard"}
    sqs = boto3.client(
        "sqs",
        endpoint_url=config.get("SQS_ENDPOINT_URL"),
        region_name=region,
        config=Config(
            retries=retries, connect_timeout=5, read_timeout=config.get("SQS_WAIT_SECONDS", 20) + 15
        ),
    )
    s3 = boto3.client(
        "s3",
        endpoint_url=config.get("S3_ENDPOINT_URL"),
        region_name=region,
        config=Config(retries=retries, connect_timeout=5, read_timeout=60),
    )
    return QueueIntake(
        sqs=sqs,
        s3=s3,
        queue_url=queue_url,
        dead_letter_url=config.get("SQS_DEAD_LETTER_QUEUE_URL"),
        max_receives=config.get("SQS_MAX_RECEIVES", 5),
        max_bytes=config["MAX_CONTENT_LENGTH"],
        retry_seconds=config.get("SQS_RETRY_SECONDS", 60),
    )
