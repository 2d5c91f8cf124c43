"""deliveries: why an admin waived a failed delivery (a channel the customer no longer uses)

Revision ID: 0009_delivery_waiver
Revises: 0008_invoice_render_job
Create Date: 2026-11-30 08:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0009_delivery_waiver'
down_revision = '0008_invoice_render_job'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('waived_reason', sa.String(length=500), nullable=True))


def downgrade():
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_column('waived_reason')
