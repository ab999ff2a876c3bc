"""lessons: post-mortem and entered lessons as tested rules

Revision ID: 0018
Revises: 0017

One row per lesson: its words, the segment and kind it concerns, what it predicts (measure,
multiplier or direction), the behaviour it asks for, where it came from (entered, or imported
from a connection with the tool's id and URL), and its latest test (status and evidence).
"""
from __future__ import annotations

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
import core.model.base

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('lessons',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('words', sa.Text(), nullable=False),
    sa.Column('segment', JSON, nullable=False),
    sa.Column('kind', sa.String(length=50), nullable=False),
    sa.Column('measure', sa.String(length=40), nullable=True),
    sa.Column('multiplier', sa.Double(), nullable=True),
    sa.Column('direction', sa.String(length=10), nullable=True),
    sa.Column('predicts', sa.Text(), nullable=False),
    sa.Column('behaviour', sa.Text(), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('connection_id', sa.Integer(), nullable=True),
    sa.Column('external_id', sa.String(length=200), nullable=True),
    sa.Column('url', sa.Text(), nullable=True),
    sa.Column('writable', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.String(length=254), nullable=True),
    sa.Column('created_at', core.model.base.UTCDateTime(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('evidence', JSON, nullable=False),
    sa.Column('tested_at', core.model.base.UTCDateTime(), nullable=True),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('proposal_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['connection_id'], ['connections.id'],
                            name=op.f('fk_lessons_connection_id_connections'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['proposal_id'], ['proposals.id'],
                            name=op.f('fk_lessons_proposal_id_proposals'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['run_id'], ['learning_runs.id'],
                            name=op.f('fk_lessons_run_id_learning_runs'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lessons'))
    )
    with op.batch_alter_table('lessons', schema=None) as batch_op:
        batch_op.create_index('ix_lessons_source', ['connection_id', 'external_id'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('lessons', schema=None) as batch_op:
        batch_op.drop_index('ix_lessons_source')
    op.drop_table('lessons')
