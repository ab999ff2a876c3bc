"""job-run locks with heartbeats; one pending proposal per dedupe key

Revision ID: 0016
Revises: 0012

A running sync or learning run holds a lock (`job_runs.lock`, unique) renewed by a heartbeat,
so a second one at the same time is refused and a dead one's lock is taken over. Pending
proposals get a partial unique index on their dedupe key; a store where overlapping learning
runs left two pending proposals for one rule keeps the newest pending and marks the others
superseded (what `policy.propose` does to an older proposal), so nothing is deleted.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import core.model.base

revision = '0016'
down_revision = '0012'
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lock', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('heartbeat_at', core.model.base.UTCDateTime(),
                                      nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_job_runs_lock'), ['lock'])

    proposals = sa.table('proposals', sa.column('id', sa.Integer),
                         sa.column('dedupe_key', sa.String), sa.column('status', sa.String))
    bind = op.get_bind()
    newest = {key: top for key, top in bind.execute(
        sa.select(proposals.c.dedupe_key, sa.func.max(proposals.c.id))
        .where(proposals.c.status == 'pending').group_by(proposals.c.dedupe_key)
        .having(sa.func.count() > 1))}
    for key, top in newest.items():
        bind.execute(sa.update(proposals).where(
            proposals.c.dedupe_key == key, proposals.c.status == 'pending',
            proposals.c.id != top).values(status='superseded'))
    with op.batch_alter_table('proposals', schema=None) as batch_op:
        batch_op.create_index('uq_proposals_pending_dedupe_key', ['dedupe_key'], unique=True,
                              sqlite_where=PENDING, postgresql_where=PENDING)


def downgrade() -> None:
    with op.batch_alter_table('proposals', schema=None) as batch_op:
        batch_op.drop_index('uq_proposals_pending_dedupe_key')
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_job_runs_lock'), type_='unique')
        batch_op.drop_column('heartbeat_at')
        batch_op.drop_column('lock')
