"""The audit trail: who did what, when, to which object, for which tenant, as a hash chain.

Events are only ever inserted (see portal/core/audit.py). Each carries its chain position `seq`, the
hash of the event before it and its own hash over a canonical form of its content, so an edited,
deleted or inserted row breaks the chain (`portal.core.audit_chain.verify_chain`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from datetime import UTC

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    delete,
    event,
    insert,
    select,
    text,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from portal.extensions import db
from portal.models.base import UTCDateTime, utcnow
from portal.models.users import User

GENESIS_HASH = "0" * 64
# Key of the PostgreSQL transaction-level advisory lock that serializes appends to the chain.
CHAIN_LOCK_KEY = 7_310_421_000_001


class AuditEvent(db.Model):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_subject", "subject_type", "subject_id"),
        Index("ix_audit_events_occurred_at", "occurred_at"),
    )
    tenant_columns = {"customer": "customer_id", "partner": "partner_id"}

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    # NULL actor = the system (a job, the scheduler, a CLI command run by an operator).
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    actor_label: Mapped[str] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(64), index=True)
    subject_type: Mapped[str | None] = mapped_column(String(64))
    subject_id: Mapped[str | None] = mapped_column(String(64))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"), index=True)
    ip: Mapped[str | None] = mapped_column(String(45))
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    # The chain: assigned at flush time by `_chain_new_events`, never by callers.
    seq: Mapped[int] = mapped_column(BigInteger, unique=True, index=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)

    actor: Mapped[User | None] = relationship()

    def __repr__(self) -> str:
        return f"<AuditEvent {self.seq} {self.action} {self.subject_type}:{self.subject_id}>"


class PendingView(db.Model):
    """A page view waiting to join the chain: inserted without the chain's lock, so page views in
    every web process never queue on one lock.

    The next append to the chain (any chained event, or `portal.core.audit.absorb_views`, run by a
    job every minute and before an audit page is read) moves the waiting views into the chain, in
    the order they were recorded, and deletes them here in the same transaction: DELETE ...
    RETURNING hands each row to exactly one appender. Same columns as an event, minus the chain.
    """

    __tablename__ = "audit_pending_views"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    occurred_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_label: Mapped[str] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str | None] = mapped_column(String(64))
    subject_id: Mapped[str | None] = mapped_column(String(64))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"))
    ip: Mapped[str | None] = mapped_column(String(45))
    details: Mapped[dict] = mapped_column(JSON, default=dict)


def canonical(fields: dict) -> str:
    """The text that is hashed: the event's content as JSON with sorted keys and no spaces.

    `fields` holds the event's columns as stored (occurred_at an aware datetime, details a dict).
    """
    occurred_at = fields["occurred_at"]
    if occurred_at.tzinfo is None:  # SQLite hands naive UTC back through raw SQL
        occurred_at = occurred_at.replace(tzinfo=UTC)
    doc = {
        "seq": fields["seq"],
        "occurred_at": occurred_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor_id": fields["actor_id"],
        "actor_label": fields["actor_label"],
        "action": fields["action"],
        "subject_type": fields["subject_type"],
        "subject_id": fields["subject_id"],
        "customer_id": fields["customer_id"],
        "partner_id": fields["partner_id"],
        "ip": fields["ip"],
        "details": fields["details"],
        "prev_hash": fields["prev_hash"],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def event_hash(fields: dict) -> str:
    return hashlib.sha256(canonical(fields).encode("utf-8")).hexdigest()


def event_fields(e: AuditEvent) -> dict:
    return {
        "seq": e.seq,
        "occurred_at": e.occurred_at,
        "actor_id": e.actor_id,
        "actor_label": e.actor_label,
        "action": e.action,
        "subject_type": e.subject_type,
        "subject_id": e.subject_id,
        "customer_id": e.customer_id,
        "partner_id": e.partner_id,
        "ip": e.ip,
        "details": e.details,
        "prev_hash": e.prev_hash,
    }


_creation_order = itertools.count()


@event.listens_for(AuditEvent, "init")
def _remember_creation_order(target, args, kwargs):
    target._chain_order = next(_creation_order)


def _take_chain_lock(session: Session) -> None:
    """Serialize appenders before the last event is read, so two writers never share a `seq`.

    PostgreSQL: a transaction-level advisory lock, released at commit or rollback.
    SQLite: the database write lock. pysqlite opens the transaction lazily at the first write, so a
    no-op UPDATE makes sure this transaction holds the write lock (other writers wait on
    busy_timeout) before the read below; the unique `seq` and `hash` are the last guard either way.
    """
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK_KEY})
    elif connection.dialect.name == "sqlite":
        connection.execute(text("UPDATE audit_events SET id = id WHERE 1 = 0"))
    _absorb_pending_views(connection)


_VIEW_COLUMNS = ("occurred_at", "actor_id", "actor_label", "action", "subject_type", "subject_id",
                 "customer_id", "partner_id", "ip", "details")  # fmt: skip


def _absorb_pending_views(connection) -> int:
    """Under the chain's lock: move the page views recorded so far into the chain, oldest first.

    The DELETE ... RETURNING claims each waiting view once (a view committed by another transaction
    meanwhile is claimed by the next append); they are chained and inserted in one statement before
    the caller reads the head, so the caller's own events follow them.
    """
    table = PendingView.__table__
    claimed = connection.execute(
        delete(table).returning(table.c.id, *(table.c[name] for name in _VIEW_COLUMNS))
    ).all()
    if not claimed:
        return 0
    last = connection.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    seq, prev_hash = (last.seq, last.hash) if last else (0, GENESIS_HASH)
    rows = []
    for view in sorted(claimed, key=lambda r: r.id):
        row = {name: getattr(view, name) for name in _VIEW_COLUMNS}
        occurred_at = row["occurred_at"]
        if occurred_at.tzinfo is None:
            occurred_at = occurred_at.replace(tzinfo=UTC)
        seq += 1
        row["occurred_at"] = occurred_at.astimezone(UTC)
        row["details"] = json.loads(json.dumps(row["details"] or {}))
        row["seq"], row["prev_hash"] = seq, prev_hash
        row["hash"] = prev_hash = event_hash(row)
        rows.append(row)
    connection.execute(insert(AuditEvent.__table__), rows)
    return len(rows)


def absorb_pending_views(session: Session) -> None:
    """Take the chain's lock, which moves the waiting page views into the chain (the caller commits)."""
    _take_chain_lock(session)


def _chain_head(session: Session) -> tuple[int, str]:
    """Take the chain's lock, then read the last event's seq and hash (the genesis if none)."""
    _take_chain_lock(session)
    with session.no_autoflush:
        last = session.execute(
            select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
        ).first()
    return (last.seq, last.hash) if last else (0, GENESIS_HASH)


def append_rows(session: Session, rows: list[dict]) -> None:
    """Chain and insert many events at once: one lock, one read of the head, one multi-row INSERT.

    `rows` hold the event columns (without seq and hashes); they are completed in place. Events
    still pending in the session are flushed first, so they keep their place before these.
    """
    if not rows:
        return
    session.flush()
    seq, prev_hash = _chain_head(session)
    now = utcnow()
    for row in rows:
        seq += 1
        # Hash what the database will hand back: UTC, microseconds, JSON-normalized details.
        row["occurred_at"] = (row.get("occurred_at") or now).astimezone(UTC)
        row["details"] = json.loads(json.dumps(row.get("details") or {}))
        row["seq"], row["prev_hash"] = seq, prev_hash
        row["hash"] = prev_hash = event_hash(row)
    session.execute(AuditEvent.__table__.insert(), rows)


@event.listens_for(Session, "before_flush")
def _chain_new_events(session: Session, flush_context, instances) -> None:
    """Give the events about to be inserted their seq, prev_hash and hash, in creation order."""
    new = [obj for obj in session.new if isinstance(obj, AuditEvent) and obj.hash is None]
    if not new:
        return
    new.sort(key=lambda e: getattr(e, "_chain_order", 0))
    seq, prev_hash = _chain_head(session)
    for e in new:
        seq += 1
        if e.occurred_at is None:
            e.occurred_at = utcnow()
        # Hash what the database will hand back: UTC, microseconds, JSON-normalized details.
        e.occurred_at = e.occurred_at.astimezone(UTC)
        e.details = json.loads(json.dumps(e.details or {}))
        e.seq, e.prev_hash = seq, prev_hash
        e.hash = prev_hash = event_hash(event_fields(e))


class AuditAnchor(db.Model):
    """A chain head a verification vouched for, signed with the app's key (see portal/core/audit.py).

    Kept in the database so that it survives a Redis restart: events cut off the end of the chain
    since then are found by the next verification. `signature` is HMAC-SHA256 over the other
    values with SECRET_KEY, so a row written by hand (without the key) is reported as forged.
    """

    __tablename__ = "audit_anchors"

    id: Mapped[int] = mapped_column(primary_key=True)
    head_seq: Mapped[int] = mapped_column(BigInteger)
    head_event_id: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[str] = mapped_column(String(64))
    event_count: Mapped[int] = mapped_column(BigInteger)
    verified_at = mapped_column(UTCDateTime, nullable=False)
    signature: Mapped[str] = mapped_column(String(64))

    def __repr__(self) -> str:
        return f"<AuditAnchor {self.id} seq={self.head_seq} count={self.event_count}>"


__all__ = [
    "AuditAnchor",
    "AuditEvent",
    "GENESIS_HASH",
    "append_rows",
    "canonical",
    "event_hash",
    "event_fields",
]
