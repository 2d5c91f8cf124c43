"""billing details for the invoice PDF: customer billing address, payment terms, locale; invoice due date

Revision ID: 0015_billing_details
Revises: 0014_job_function_paths
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0015_billing_details"
down_revision = "0014_job_function_paths"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("billing_address", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("payment_terms_days", sa.Integer(), nullable=False, server_default="30")
        )
        batch.add_column(sa.Column("locale", sa.String(16), nullable=False, server_default="en_US"))
    with op.batch_alter_table("invoices") as batch:
        batch.add_column(sa.Column("due_on", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("invoices") as batch:
        batch.drop_column("due_on")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("locale")
        batch.drop_column("payment_terms_days")
        batch.drop_column("billing_address")
