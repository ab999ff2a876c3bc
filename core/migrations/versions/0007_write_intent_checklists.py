"""write intent checklists

Revision ID: 0007
Revises: 0004
Create Date: 2026-12-08 10:00:00.000000

A delivery the tool's API cannot make becomes a checklist for a person: its steps, and who
checked them off and when. Existing intents keep their status and get no checklist.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import core.model.base
from sqlalchemy.dialects import postgresql


revision = '0007'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('write_intents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('checklist', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True))
        batch_op.add_column(sa.Column('checked_by', sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column('checked_at', core.model.base.UTCDateTime(), nullable=True))


def downgrade() -> None:
    # A checked-off checklist counts as delivered for the release before this one.
    op.execute("UPDATE write_intents SET status = 'delivered' WHERE status = 'checked'")
    op.execute("UPDATE write_intents SET status = 'pending' WHERE status = 'checklist'")
    with op.batch_alter_table('write_intents', schema=None) as batch_op:
        batch_op.drop_column('checked_at')
        batch_op.drop_column('checked_by')
        batch_op.drop_column('checklist')
