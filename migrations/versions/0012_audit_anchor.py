"""audit_anchors: the chain heads verifications vouched for, signed with SECRET_KEY

Revision ID: 0012_audit_anchor
Revises: 0011_user_sessions
Create Date: 2026-12-05 09:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012_audit_anchor'
down_revision = '0011_user_sessions'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('audit_anchors',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('head_seq', sa.BigInteger(), nullable=False),
    sa.Column('head_event_id', sa.BigInteger(), nullable=False),
    sa.Column('head_hash', sa.String(length=64), nullable=False),
    sa.Column('event_count', sa.BigInteger(), nullable=False),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('signature', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_anchors'))
    )


def downgrade():
    op.drop_table('audit_anchors')
