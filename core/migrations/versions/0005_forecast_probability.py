"""forecast probability

Win probabilities go into the forecast ledger beside quantile forecasts: a nullable
`probability` column, and the quantile columns become nullable (a probability forecast has
none). Existing rows keep their values.

Revision ID: 0005
Revises: 0010
Create Date: 2026-12-08 10:00:00.000000
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('forecasts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('probability', sa.Double(), nullable=True))
        for name in ('p50', 'p80', 'p90'):
            batch_op.alter_column(name, existing_type=sa.Double(), nullable=True)


def downgrade() -> None:
    # Probability forecasts have no quantiles: they cannot stay once the columns are required.
    op.execute("DELETE FROM forecasts WHERE p50 IS NULL OR p80 IS NULL OR p90 IS NULL")
    with op.batch_alter_table('forecasts', schema=None) as batch_op:
        for name in ('p50', 'p80', 'p90'):
            batch_op.alter_column(name, existing_type=sa.Double(), nullable=False)
        batch_op.drop_column('probability')
