"""findings keep p and q apart, a spread apart from the confidence interval, evidence apart

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-01 22:30:00

Estimation findings stored before this revision kept the p10-p90 spread of the segment's items
in interval_low/high (level 0.8) and the confidence interval of the median inside
item_ids["evidence"]; they are moved to their own columns. Experiment findings stored the
q-value in p_value too; the p-value is not recoverable for them, so both stay as stored.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0010'
down_revision = '0007'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('spread_low', sa.Double(), nullable=True))
        batch_op.add_column(sa.Column('spread_high', sa.Double(), nullable=True))
        batch_op.add_column(sa.Column('evidence', JSON, nullable=True))
    findings = sa.table('findings', sa.column('id', sa.Integer), sa.column('kind', sa.String),
                        sa.column('interval_low', sa.Double), sa.column('interval_high', sa.Double),
                        sa.column('interval_level', sa.Double), sa.column('spread_low', sa.Double),
                        sa.column('spread_high', sa.Double), sa.column('item_ids', JSON),
                        sa.column('evidence', JSON))
    bind = op.get_bind()
    rows = bind.execute(sa.select(findings.c.id, findings.c.kind, findings.c.interval_low,
                                  findings.c.interval_high, findings.c.item_ids)).all()
    for fid, kind, low, high, ids in rows:
        ids = dict(ids or {})
        evidence = ids.pop("evidence", None) or {}
        values: dict[str, object] = {"item_ids": ids, "evidence": evidence}
        ci = evidence.get("median_ci_90") if kind == "estimation" else None
        if ci and len(ci) == 2:
            values.update(spread_low=low, spread_high=high, interval_low=float(ci[0]),
                          interval_high=float(ci[1]), interval_level=0.9)
        bind.execute(sa.update(findings).where(findings.c.id == fid).values(**values))
    bind.execute(sa.update(findings).where(findings.c.evidence.is_(None)).values(evidence={}))
    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.alter_column('evidence', existing_type=JSON, nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.drop_column('evidence')
        batch_op.drop_column('spread_high')
        batch_op.drop_column('spread_low')
