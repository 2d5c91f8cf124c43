"""upload_rows: leaner for bulk staging: no foreign key check per row, the quarantine index holds held rows only, and the unused (upload, reference) index goes

Each staged row paid for all three; a file's rows are nearly all accepted, nothing looked rows up by
reference, and only the parse job writes these rows, for the upload it holds (bench/ingest.py).

Revision ID: 0020_upload_rows_lean_staging
Revises: 0019_queue_messages
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0020_upload_rows_lean_staging"
down_revision = "0019_queue_messages"
branch_labels = None
depends_on = None

HELD = sa.text("outcome = 'quarantined'")


def upgrade() -> None:
    with op.batch_alter_table("upload_rows", schema=None) as batch_op:
        batch_op.drop_constraint("fk_upload_rows_upload_id_uploads", type_="foreignkey")
        batch_op.drop_index("ix_upload_rows_upload_reference")
        batch_op.drop_index("ix_upload_rows_quarantine")
        batch_op.create_index(
            "ix_upload_rows_quarantine",
            ["customer_id", "employee_external_id"],
            unique=False,
            postgresql_where=HELD,
            sqlite_where=HELD,
        )


def downgrade() -> None:
    with op.batch_alter_table("upload_rows", schema=None) as batch_op:
        batch_op.drop_index("ix_upload_rows_quarantine")
        batch_op.create_index(
            "ix_upload_rows_quarantine", ["outcome", "customer_id", "employee_external_id"], unique=False
        )
        batch_op.create_index("ix_upload_rows_upload_reference", ["upload_id", "partner_reference"], unique=False)
        batch_op.create_foreign_key(
            "fk_upload_rows_upload_id_uploads", "uploads", ["upload_id"], ["id"]
        )
