"""partner identifiers: rows keyed by work email; per-partner names (aliases) of customers

Revision ID: 0016_partner_identifiers
Revises: 0015_billing_details
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0016_partner_identifiers"
down_revision = "0015_billing_details"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("upload_rows") as batch:
        batch.add_column(sa.Column("employee_email", sa.String(254), nullable=True))
    op.create_table(
        "customer_aliases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(200), nullable=False),
        sa.Column("alias_key", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_customer_aliases_partner_id_partners")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_customer_aliases_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], name=op.f("fk_customer_aliases_created_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_aliases")),
        sa.UniqueConstraint("partner_id", "alias_key", name=op.f("uq_customer_aliases_partner_id_alias_key")),
    )
    op.create_index("ix_customer_aliases_partner_id", "customer_aliases", ["partner_id"])
    op.create_index("ix_customer_aliases_customer_id", "customer_aliases", ["customer_id"])


def downgrade() -> None:
    op.drop_index("ix_customer_aliases_customer_id", "customer_aliases")
    op.drop_index("ix_customer_aliases_partner_id", "customer_aliases")
    op.drop_table("customer_aliases")
    with op.batch_alter_table("upload_rows") as batch:
        batch.drop_column("employee_email")
