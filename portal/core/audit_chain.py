"""Verifies the audit log's hash chain and keeps what a verification vouched for.

`verify_chain()` walks the chain and reports the first event where it breaks; an intact walk writes
a signed anchor (`audit_anchors`), so events later cut off the end are reported even after Redis,
which only keeps the admin page's last result, has been restarted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import redis
from flask import current_app
from sqlalchemy import select

from portal import jobs
from portal.extensions import db
from portal.models.audit import GENESIS_HASH, AuditAnchor, AuditEvent, event_hash
from portal.models.base import utcnow

_CHAIN_COLUMNS = (
    AuditEvent.id,
    AuditEvent.seq,
    AuditEvent.occurred_at,
    AuditEvent.actor_id,
    AuditEvent.actor_label,
    AuditEvent.action,
    AuditEvent.subject_type,
    AuditEvent.subject_id,
    AuditEvent.customer_id,
    AuditEvent.partner_id,
    AuditEvent.ip,
    AuditEvent.details,
    AuditEvent.prev_hash,
    AuditEvent.hash,
)


def verify_chain(
    batch: int = 5000, *, published: AnchorLine | None = None, unsigned: bool = False
) -> tuple[bool, int, dict | None]:
    """Walk every event in seq order, `batch` at a time, recomputing hashes and links.

    Returns (ok, events checked, first_bad): first_bad names the first event whose seq does not
    follow the one before (an event was deleted or renumbered), whose prev_hash is not the previous
    event's hash (one was inserted or deleted), or whose hash does not match its content (edited).
    Cutting events off the end cannot be seen from inside the chain, so the chain is also compared
    with the latest validly signed anchor in the database (and with `published`, an anchor line an
    operator kept elsewhere): the event it vouched for must still be there with the same hash. An
    anchor newer than that one whose signature does not verify is reported as forged.
    `unsigned` (after SECRET_KEY was rotated, `flask audit anchor --resign`) takes the newest stored
    anchor as it stands, without checking its signature.
    """
    anchors: list[AnchorLine] = []
    stored, forged = latest_anchor()
    if unsigned:
        stored, forged = forged or stored, None
    if forged is not None:
        return (
            False,
            0,
            _anchor_problem(
                forged,
                f"the anchor of {_when(forged)} has an invalid signature: "
                "it was forged or altered (or SECRET_KEY changed since it was written)",
            ),
        )
    if stored is not None:
        anchors.append(stored)
    if published is not None:
        if not published.signature_valid():
            return (
                False,
                0,
                _anchor_problem(
                    published,
                    "the published anchor's signature is invalid: it was "
                    "altered, or not written with this SECRET_KEY",
                ),
            )
        anchors.append(published)
    vouched = {a.head_seq: a for a in anchors}
    count, expected_seq, prev_hash = 0, 1, GENESIS_HASH
    last_seq = 0
    while True:
        # Plain rows, not entities: nothing accumulates in the session's identity map.
        rows = db.session.execute(
            select(*_CHAIN_COLUMNS).where(AuditEvent.seq > last_seq).order_by(AuditEvent.seq).limit(batch)
        ).all()
        if not rows:
            break
        for e in rows:
            reason = None
            anchor = vouched.get(e.seq)
            if e.seq != expected_seq:
                reason = f"expected seq {expected_seq}, found {e.seq} (an event is missing)"
            elif e.prev_hash != prev_hash:
                reason = (
                    "prev_hash does not match the previous event's hash (an event was inserted or removed)"
                )
            elif e.hash != event_hash(e._mapping):
                reason = "hash does not match the event's content (the event was edited)"
            elif anchor is not None and e.hash != anchor.head_hash:
                reason = (
                    f"this event differs from the one the anchor of {_when(anchor)} vouched for "
                    "(chain rewritten)"
                )
            if reason:
                return False, count, {"seq": e.seq, "id": e.id, "reason": reason}
            count += 1
            expected_seq, prev_hash, last_seq = e.seq + 1, e.hash, e.seq
    longest = max(anchors, key=lambda a: a.head_seq, default=None)
    if longest is not None and longest.head_seq > last_seq:
        return (
            False,
            count,
            _anchor_problem(
                longest,
                f"events after #{last_seq} are missing: the anchor of {_when(longest)} vouched for "
                f"{longest.event_count} events, the log now has {count} (events were removed from the end)",
            ),
        )
    return True, count, None


def _when(anchor: AnchorLine) -> str:
    return f"{anchor.verified_at:%Y-%m-%d %H:%M:%S} UTC"


def _anchor_problem(anchor: AnchorLine, reason: str) -> dict:
    return {"seq": anchor.head_seq, "id": anchor.head_event_id, "reason": reason}


# --- anchors --------------------------------------------------------------------------------------

ANCHOR_PREFIX = "audit-anchor v1"


@dataclass(frozen=True)
class AnchorLine:
    """A chain head a verification vouched for: a row of audit_anchors, or the line published from one.

    The signature is HMAC-SHA256 with SECRET_KEY over the other values, so neither the row nor the
    line can be written or changed without the key.
    """

    head_seq: int
    head_event_id: int
    head_hash: str
    event_count: int
    verified_at: datetime
    signature: str = ""

    def signed_text(self) -> str:
        at = self.verified_at.astimezone(UTC).isoformat(timespec="microseconds")
        return (
            f"{ANCHOR_PREFIX}|{self.head_seq}|{self.head_event_id}|{self.head_hash}|{self.event_count}|{at}"
        )

    def expected_signature(self) -> str:
        key = current_app.config["SECRET_KEY"]
        key = key if isinstance(key, bytes) else str(key).encode("utf-8")
        return hmac.new(key, self.signed_text().encode("utf-8"), hashlib.sha256).hexdigest()

    def signature_valid(self) -> bool:
        return hmac.compare_digest(self.signature, self.expected_signature())

    def signed(self) -> AnchorLine:
        return replace(self, signature=self.expected_signature())

    def line(self) -> str:
        """One line an operator can keep elsewhere and give back to `audit verify --anchor`."""
        at = self.verified_at.astimezone(UTC).isoformat(timespec="microseconds")
        return (
            f"{ANCHOR_PREFIX} seq={self.head_seq} id={self.head_event_id} count={self.event_count} "
            f"hash={self.head_hash} at={at} sig={self.signature}"
        )

    @classmethod
    def parse(cls, text: str) -> AnchorLine:
        """Read a published line; raise ValueError saying what is wrong with it."""
        text = (text or "").strip()
        if not text.startswith(ANCHOR_PREFIX + " "):
            raise ValueError(f"an anchor line starts with '{ANCHOR_PREFIX} '")
        fields = dict(part.partition("=")[::2] for part in text[len(ANCHOR_PREFIX) :].split())
        missing = [k for k in ("seq", "id", "count", "hash", "at", "sig") if not fields.get(k)]
        if missing:
            raise ValueError(f"the anchor line lacks {', '.join(missing)}")
        try:
            at = datetime.fromisoformat(fields["at"])
            return cls(
                head_seq=int(fields["seq"]),
                head_event_id=int(fields["id"]),
                head_hash=fields["hash"],
                event_count=int(fields["count"]),
                verified_at=at if at.tzinfo else at.replace(tzinfo=UTC),
                signature=fields["sig"],
            )
        except ValueError as exc:
            raise ValueError(f"the anchor line is malformed: {exc}") from exc

    @classmethod
    def of(cls, row: AuditAnchor) -> AnchorLine:
        return cls(
            head_seq=row.head_seq,
            head_event_id=row.head_event_id,
            head_hash=row.head_hash,
            event_count=row.event_count,
            verified_at=row.verified_at,
            signature=row.signature,
        )


def latest_anchor() -> tuple[AnchorLine | None, AnchorLine | None]:
    """(the newest anchor whose signature verifies, the newest forged one written after it, if any)."""
    forged = None
    for row in db.session.scalars(select(AuditAnchor).order_by(AuditAnchor.id.desc())):
        anchor = AnchorLine.of(row)
        if anchor.signature_valid():
            return anchor, forged
        forged = forged or anchor
    return None, forged


def write_anchor(count: int) -> AnchorLine | None:
    """Record (in the caller's transaction) that the first `count` events were verified intact.

    The head is the event at seq `count`, the last one the walk saw, not the newest now: an event
    appended during the walk was not verified, so it is not vouched for.
    """
    head = db.session.execute(
        select(AuditEvent.id, AuditEvent.seq, AuditEvent.hash).where(AuditEvent.seq == count)
    ).first()
    if head is None:
        return None
    anchor = AnchorLine(
        head_seq=head.seq, head_event_id=head.id, head_hash=head.hash, event_count=count, verified_at=utcnow()
    ).signed()
    db.session.add(
        AuditAnchor(
            head_seq=anchor.head_seq,
            head_event_id=anchor.head_event_id,
            head_hash=anchor.head_hash,
            event_count=anchor.event_count,
            verified_at=anchor.verified_at,
            signature=anchor.signature,
        )
    )
    return anchor


VERIFICATION_KEY = "audit:last_verification"


def remember_verification(ok: bool, count: int, first_bad: dict | None) -> dict:
    """Keep the result of a verification: a signed anchor in the database when the chain was intact
    (the caller commits), and the result in Redis for the admin audit page.

    A full walk is too slow to repeat on every page view at a million events; Redis being down
    only loses the page's note, never the anchor.
    """
    result = {"ok": ok, "count": count, "first_bad": first_bad, "at": utcnow().isoformat()}
    if ok:
        write_anchor(count)
    try:
        jobs.get_connection().set(VERIFICATION_KEY, json.dumps(result))
    except redis.RedisError:
        current_app.logger.warning("could not store the audit verification result", exc_info=True)
    return result


def last_verification() -> dict | None:
    """The last verification result ({ok, count, first_bad, at}), or None.

    From Redis; after a Redis restart, the latest valid anchor stands in for it (a good result).
    """
    try:
        raw = jobs.get_connection().get(VERIFICATION_KEY)
    except redis.RedisError:
        raw = None
    if not raw:
        anchor, _forged = latest_anchor()
        if anchor is None:
            return None
        return {"ok": True, "count": anchor.event_count, "first_bad": None, "at": anchor.verified_at}
    result = json.loads(raw)
    result["at"] = datetime.fromisoformat(result["at"])
    return result
