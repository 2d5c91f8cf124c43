"""job records: functions that moved in the layout tidy-up, under their new dotted paths

A job record names its function by dotted path; the parse job moved from portal.ingest.pipeline to
portal.ingest.parse. Records written before the move (pending, retrying, or failed and waiting for
an admin's retry) are rewritten so they still resolve.

Revision ID: 0014_job_function_paths
Revises: 0013_job_heartbeat
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0014_job_function_paths"
down_revision = "0013_job_heartbeat"
branch_labels = None
depends_on = None

MOVED = {"portal.ingest.pipeline.parse_upload": "portal.ingest.parse.parse_upload"}


def _rename(pairs) -> None:
    for old, new in pairs:
        op.execute(
            sa.text("UPDATE job_records SET func = :new WHERE func = :old").bindparams(old=old, new=new)
        )


def upgrade() -> None:
    _rename(MOVED.items())


def downgrade() -> None:
    _rename((new, old) for old, new in MOVED.items())
