"""job_records: heartbeat of the running attempt, its worker, and dead-worker recoveries

Revision ID: 0013_job_heartbeat
Revises: 0012_audit_anchor
Create Date: 2026-12-08 09:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0013_job_heartbeat'
down_revision = '0012_audit_anchor'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('job_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('worker', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('recoveries', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('lost_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('recovered_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('job_records', schema=None) as batch_op:
        batch_op.drop_column('recovered_at')
        batch_op.drop_column('lost_at')
        batch_op.drop_column('recoveries')
        batch_op.drop_column('worker')
        batch_op.drop_column('heartbeat_at')
