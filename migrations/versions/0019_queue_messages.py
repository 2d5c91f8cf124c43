"""queue_messages: queue messages that announced a partner file, so a redelivered one imports once

Revision ID: 0019_queue_messages
Revises: 0018_api_tokens
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0019_queue_messages"
down_revision = "0018_api_tokens"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "queue_messages",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("record_index", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.String(255), nullable=False),
        sa.Column("object_key", sa.String(1024), nullable=False),
        sa.Column("etag", sa.String(128), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("upload_id", sa.Integer(), nullable=False),
        sa.Column(
            "outcome",
            sa.Enum("received", "duplicate", name="queueoutcome", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_queue_messages_partner_id_partners")),
        sa.ForeignKeyConstraint(["upload_id"], ["uploads.id"], name=op.f("fk_queue_messages_upload_id_uploads")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_messages")),
        sa.UniqueConstraint("message_id", "record_index", name=op.f("uq_queue_messages_message_id_record_index")),
    )
    with op.batch_alter_table("queue_messages", schema=None) as batch_op:
        batch_op.create_index("ix_queue_messages_object", ["bucket", "object_key", "etag"], unique=False)
        batch_op.create_index(batch_op.f("ix_queue_messages_partner_id"), ["partner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_queue_messages_upload_id"), ["upload_id"], unique=False)


def downgrade() -> None:
    op.drop_table("queue_messages")
