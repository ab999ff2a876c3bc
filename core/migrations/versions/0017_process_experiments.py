"""declared process experiments

Revision ID: 0017
Revises: 0016

One row per declared change ("team A moves to 2-week sprints from March"): the hypothesis,
the treated and comparison predicates, start and end, the measures with the expected
direction and the minimum effect worth acting on, and the latest verdict with its evidence.
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
import core.model.base

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    json = core.model.base.JSONType
    when = core.model.base.UTCDateTime()
    op.create_table(
        'process_experiments',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('hypothesis', sa.Text(), nullable=False),
        sa.Column('treated', json, nullable=False),
        sa.Column('comparison', json, nullable=True),
        sa.Column('cluster', sa.String(length=100), nullable=True),
        sa.Column('start', when, nullable=False),
        sa.Column('end', when, nullable=True),
        sa.Column('measures', json, nullable=False),
        sa.Column('direction', sa.String(length=10), nullable=False),
        sa.Column('min_effect', sa.Double(), nullable=False),
        sa.Column('extend_to', json, nullable=True),
        sa.Column('epic', sa.String(length=200), nullable=True),
        sa.Column('owner', sa.String(length=254), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('verdict', sa.String(length=20), nullable=True),
        sa.Column('statement', sa.Text(), nullable=True),
        sa.Column('evidence', json, nullable=False),
        sa.Column('evaluated_at', when, nullable=True),
        sa.Column('run_id', sa.Integer(), nullable=True),
        sa.Column('finding_id', sa.Integer(), nullable=True),
        sa.Column('proposal_id', sa.Integer(), nullable=True),
        sa.Column('created_at', when, nullable=False),
        sa.Column('updated_at', when, nullable=False),
        sa.ForeignKeyConstraint(['finding_id'], ['findings.id'], ondelete='SET NULL',
                                name=op.f('fk_process_experiments_finding_id_findings')),
        sa.ForeignKeyConstraint(['proposal_id'], ['proposals.id'], ondelete='SET NULL',
                                name=op.f('fk_process_experiments_proposal_id_proposals')),
        sa.ForeignKeyConstraint(['run_id'], ['learning_runs.id'], ondelete='SET NULL',
                                name=op.f('fk_process_experiments_run_id_learning_runs')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_process_experiments')),
    )
    op.create_index('ix_process_experiments_status', 'process_experiments', ['status'])


def downgrade() -> None:
    op.drop_index('ix_process_experiments_status', table_name='process_experiments')
    op.drop_table('process_experiments')
