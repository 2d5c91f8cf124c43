"""audit events: hash chain (seq, prev_hash, hash) and, on PostgreSQL, an immutability trigger

Revision ID: 0006_audit_chain
Revises: 0005_job_retry_intervals
Create Date: 2026-12-01 10:00:00

Existing events are chained in id order. The canonical form is copied here on purpose (a migration
must not import the app): keep it identical to portal/models/audit.py:canonical().
"""

import hashlib
import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0006_audit_chain"
down_revision = "0005_job_retry_intervals"
branch_labels = None
depends_on = None

GENESIS_HASH = "0" * 64
BATCH = 5000

events = sa.table(
    "audit_events",
    sa.column("id", sa.Integer),
    sa.column("occurred_at", sa.DateTime(timezone=True)),
    sa.column("actor_id", sa.Integer),
    sa.column("actor_label", sa.String),
    sa.column("action", sa.String),
    sa.column("subject_type", sa.String),
    sa.column("subject_id", sa.String),
    sa.column("customer_id", sa.Integer),
    sa.column("partner_id", sa.Integer),
    sa.column("ip", sa.String),
    sa.column("details", sa.JSON),
    sa.column("seq", sa.BigInteger),
    sa.column("prev_hash", sa.String),
    sa.column("hash", sa.String),
)


def _canonical(row, seq, prev_hash):
    occurred_at = row.occurred_at
    if isinstance(occurred_at, str):
        occurred_at = datetime.fromisoformat(occurred_at)
    if occurred_at.tzinfo is None:  # SQLite stores naive UTC
        occurred_at = occurred_at.replace(tzinfo=UTC)
    doc = {
        "seq": seq,
        "occurred_at": occurred_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor_id": row.actor_id,
        "actor_label": row.actor_label,
        "action": row.action,
        "subject_type": row.subject_type,
        "subject_id": row.subject_id,
        "customer_id": row.customer_id,
        "partner_id": row.partner_id,
        "ip": row.ip,
        "details": row.details if row.details is not None else {},
        "prev_hash": prev_hash,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _backfill(conn):
    seq, prev_hash, last_id = 0, GENESIS_HASH, 0
    while True:
        rows = conn.execute(
            sa.select(events).where(events.c.id > last_id).order_by(events.c.id).limit(BATCH)
        ).all()
        if not rows:
            return
        updates = []
        for row in rows:
            seq += 1
            digest = hashlib.sha256(_canonical(row, seq, prev_hash).encode("utf-8")).hexdigest()
            updates.append({"row_id": row.id, "s": seq, "p": prev_hash, "h": digest})
            prev_hash, last_id = digest, row.id
        conn.execute(
            events.update()
            .where(events.c.id == sa.bindparam("row_id"))
            .values(seq=sa.bindparam("s"), prev_hash=sa.bindparam("p"), hash=sa.bindparam("h")),
            updates,
        )


def upgrade():
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))

    _backfill(op.get_bind())

    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.create_index(batch_op.f("ix_audit_events_seq"), ["seq"], unique=True)
        batch_op.create_index(batch_op.f("ix_audit_events_hash"), ["hash"], unique=True)

    if op.get_bind().dialect.name == "postgresql":
        # Row-level only: TRUNCATE (used by the test suite between tests) stays possible for the owner.
        op.execute(
            """
            CREATE FUNCTION audit_events_immutable() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
                    USING ERRCODE = 'insufficient_privilege';
            END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            """
            CREATE TRIGGER audit_events_immutable
            BEFORE UPDATE OR DELETE ON audit_events
            FOR EACH ROW EXECUTE FUNCTION audit_events_immutable()
            """
        )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_immutable ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS audit_events_immutable()")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_hash"))
        batch_op.drop_index(batch_op.f("ix_audit_events_seq"))
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("seq")
