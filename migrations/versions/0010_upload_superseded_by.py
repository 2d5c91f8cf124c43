"""uploads: which later upload of the same file name superseded a failed or needs-review upload

Revision ID: 0010_upload_superseded_by
Revises: 0009_delivery_waiver
Create Date: 2026-12-01 09:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010_upload_superseded_by'
down_revision = '0009_delivery_waiver'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('uploads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('superseded_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f('fk_uploads_superseded_by_id_uploads'), 'uploads', ['superseded_by_id'], ['id']
        )


def downgrade():
    with op.batch_alter_table('uploads', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_uploads_superseded_by_id_uploads'), type_='foreignkey')
        batch_op.drop_column('superseded_by_id')
