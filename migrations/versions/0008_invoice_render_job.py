"""invoices: the job that renders an approved invoice's PDF and CSV, for the page's progress

Revision ID: 0008_invoice_render_job
Revises: 0007_webhook_secret_grace
Create Date: 2026-11-30 08:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008_invoice_render_job'
down_revision = '0007_webhook_secret_grace'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('render_job_id', sa.String(length=36), nullable=True))


def downgrade():
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_column('render_job_id')
