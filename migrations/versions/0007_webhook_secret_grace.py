"""delivery channels: the previous webhook secret and until when it still signs

Revision ID: 0007_webhook_secret_grace
Revises: 0006_audit_chain
Create Date: 2026-11-25 17:50:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007_webhook_secret_grace'
down_revision = '0006_audit_chain'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('delivery_channels', schema=None) as batch_op:
        batch_op.add_column(sa.Column('previous_secret', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('previous_secret_until', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('delivery_channels', schema=None) as batch_op:
        batch_op.drop_column('previous_secret_until')
        batch_op.drop_column('previous_secret')
