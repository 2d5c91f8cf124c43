"""`Idempotency-Key` for every POST of the API: the first answer is stored and replayed for a repeat.

Stored per (token's user, key) with a hash of the request (method, path, query, body) for
IDEMPOTENCY_HOURS (at least 24); a repeat with the same request gets the stored answer and the header
`Idempotent-Replayed: true`; the same key with a different request is a 422; a repeat while the first
is still running is a 409. 5xx answers are not stored, so a retry after a server error runs again.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from functools import wraps

from flask import current_app, make_response, request
from flask_login import current_user
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from portal.api.problems import abort_problem
from portal.extensions import db
from portal.models.api import IdempotencyRecord
from portal.models.base import utcnow

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
MAX_KEY = 255
# Headers of the first answer worth replaying (not Set-Cookie, Date, rate-limit counters...).
KEPT_HEADERS = ("Content-Type", "Location", "Content-Disposition")


def request_fingerprint() -> str:
    """SHA-256 over what makes two requests "the same": method, path, query and body.

    JSON is compared as data (key order and spacing do not matter); a multipart body by its fields
    and each file's name and content (the boundary differs between two sends of the same file).
    """
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.path}?{request.query_string.decode()}\n".encode())
    if request.is_json:
        payload = request.get_json(silent=True)
        digest.update(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode())
    elif request.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        for name, value in sorted(request.form.items(multi=True)):
            digest.update(f"form {name}={value}\n".encode())
        for name, storage in sorted(
            request.files.items(multi=True), key=lambda i: (i[0], i[1].filename or "")
        ):
            digest.update(f"file {name} {storage.filename}\n".encode())
            while chunk := storage.stream.read(64 * 1024):
                digest.update(chunk)
            storage.stream.seek(0)
    else:
        digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def _replay(record: IdempotencyRecord):
    response = current_app.response_class(record.body or b"", status=record.status)
    for name, value in (record.headers or {}).items():
        response.headers[name] = value
    response.headers[REPLAYED] = "true"
    return response


def idempotent(view):
    """Make a POST view honour `Idempotency-Key` (apply it under the route and the auth decorators)."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None or not current_user.is_authenticated:
            return view(*args, **kwargs)
        key = key.strip()
        if not key or len(key) > MAX_KEY:
            abort_problem(422, errors=[{"field": HEADER, "message": f"use 1 to {MAX_KEY} characters"}])
        now = utcnow()
        fingerprint = request_fingerprint()
        user_id = current_user.id
        db.session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.user_id == user_id, IdempotencyRecord.expires_at <= now
            )
        )
        record = db.session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key
            )
        )
        if record is None:
            hours = current_app.config.get("IDEMPOTENCY_HOURS", 24)
            record = IdempotencyRecord(
                user_id=user_id,
                key=key,
                request_hash=fingerprint,
                headers={},
                created_at=now,
                expires_at=now + timedelta(hours=max(24, hours)),
            )
            db.session.add(record)
            try:
                db.session.commit()  # claim the key before acting, so a concurrent repeat sees it
            except IntegrityError:
                db.session.rollback()
                abort_problem(409, detail="A request with this Idempotency-Key is still being processed.")
        else:
            db.session.commit()
            if record.request_hash != fingerprint:
                abort_problem(
                    422,
                    detail="This Idempotency-Key was used for a different request.",
                    errors=[{"field": HEADER, "message": "already used with a different request"}],
                )
            if record.status is None:
                abort_problem(409, detail="A request with this Idempotency-Key is still being processed.")
            return _replay(record)
        record_id = record.id
        try:
            response = make_response(view(*args, **kwargs))
        except BaseException:
            _forget(record_id)
            raise
        if response.status_code >= 500 or response.is_streamed:
            _forget(record_id)
            return response
        db.session.rollback()  # whatever the view left unflushed is not ours to commit
        stored = db.session.get(IdempotencyRecord, record_id)
        stored.status = response.status_code
        stored.headers = {name: response.headers[name] for name in KEPT_HEADERS if name in response.headers}
        stored.body = response.get_data()
        db.session.commit()
        return response

    return wrapped


def _forget(record_id: int) -> None:
    db.session.rollback()
    db.session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))
    db.session.commit()
