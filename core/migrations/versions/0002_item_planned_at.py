"""item planned_at

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 10:31:50.162106
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import core.model.base


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.add_column(sa.Column('planned_at', core.model.base.UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_items_planned_at'), ['planned_at'], unique=False)
    op.execute(
        "UPDATE items SET planned_at = COALESCE(estimated_at, planned_start, actual_start, actual_end)"
    )


def downgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_items_planned_at'))
        batch_op.drop_column('planned_at')

