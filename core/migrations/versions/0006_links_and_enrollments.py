"""links between items and enrollments; enrollments back-filled from variant segments

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 21:57:09.027577

Before this revision an enrollment was an item whose segments carried `variant` (the arm),
`sequence`/`campaign`/`test` (the test), `assignment` (random or not) and `account` (the unit).
Each such item gets its Enrollment row, so no stored experiment is lost; the segments stay.
"""
from __future__ import annotations

from typing import Any

from alembic import op
import sqlalchemy as sa
import core.model.base
from sqlalchemy.dialects import postgresql

TEST_KEYS = ("sequence", "campaign", "test")
CHUNK = 1000

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('enrollments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connection_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('unit', sa.String(length=200), nullable=True),
    sa.Column('test', sa.String(length=200), nullable=False),
    sa.Column('arm', sa.String(length=200), nullable=False),
    sa.Column('assigned_at', core.model.base.UTCDateTime(), nullable=True),
    sa.Column('random', sa.Boolean(), nullable=False),
    sa.Column('expected_split', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.ForeignKeyConstraint(['connection_id'], ['connections.id'], name=op.f('fk_enrollments_connection_id_connections'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_enrollments_item_id_items'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_enrollments')),
    sa.UniqueConstraint('item_id', 'test', name=op.f('uq_enrollments_item_id_test'))
    )
    with op.batch_alter_table('enrollments', schema=None) as batch_op:
        batch_op.create_index('ix_enrollments_test', ['test', 'arm'], unique=False)

    op.create_table('item_links',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('connection_id', sa.Integer(), nullable=False),
    sa.Column('from_external_id', sa.String(length=200), nullable=False),
    sa.Column('to_external_id', sa.String(length=200), nullable=False),
    sa.Column('relation', sa.String(length=30), nullable=False),
    sa.Column('from_item_id', sa.Integer(), nullable=True),
    sa.Column('to_item_id', sa.Integer(), nullable=True),
    sa.Column('created_at', core.model.base.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['connection_id'], ['connections.id'], name=op.f('fk_item_links_connection_id_connections'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['from_item_id'], ['items.id'], name=op.f('fk_item_links_from_item_id_items'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['to_item_id'], ['items.id'], name=op.f('fk_item_links_to_item_id_items'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_item_links')),
    sa.UniqueConstraint('connection_id', 'from_external_id', 'to_external_id', 'relation', name='uq_item_links_connection_from_to_relation')
    )
    with op.batch_alter_table('item_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_item_links_from_item_id'), ['from_item_id'], unique=False)
        batch_op.create_index('ix_item_links_pending', ['connection_id', 'to_external_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_item_links_to_item_id'), ['to_item_id'], unique=False)

    _backfill_enrollments()


def _enrollment(item_id: int, connection_id: int, segments: dict[str, Any] | None,
                when: Any) -> dict[str, Any] | None:
    seg = segments or {}
    arm = seg.get("variant")
    if arm in (None, ""):
        return None
    test = next((str(seg[k]) for k in TEST_KEYS if seg.get(k) not in (None, "")), "all")
    unit = seg.get("account")
    return {"connection_id": connection_id, "item_id": item_id, "test": test[:200],
            "arm": str(arm)[:200], "unit": None if unit in (None, "") else str(unit)[:200],
            "assigned_at": when, "random": str(seg.get("assignment", "")).lower() == "random",
            "expected_split": None}


def _backfill_enrollments() -> None:
    bind = op.get_bind()
    json_type = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    items = sa.table("items", sa.column("id", sa.Integer), sa.column("connection_id", sa.Integer),
                     sa.column("segments", json_type), sa.column("planned_at", sa.DateTime))
    enrollments = sa.table(
        "enrollments", sa.column("connection_id", sa.Integer), sa.column("item_id", sa.Integer),
        sa.column("unit", sa.String), sa.column("test", sa.String), sa.column("arm", sa.String),
        sa.column("assigned_at", sa.DateTime), sa.column("random", sa.Boolean),
        sa.column("expected_split", json_type))
    last = 0
    while True:
        rows = bind.execute(sa.select(items.c.id, items.c.connection_id, items.c.segments,
                                      items.c.planned_at)
                            .where(items.c.id > last,
                                   items.c.segments["variant"].as_string().is_not(None))
                            .order_by(items.c.id).limit(CHUNK)).all()
        if not rows:
            return
        last = rows[-1][0]
        found = [e for e in (_enrollment(*r) for r in rows) if e is not None]
        if found:
            bind.execute(enrollments.insert(), found)


def downgrade() -> None:
    with op.batch_alter_table('item_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_item_links_to_item_id'))
        batch_op.drop_index('ix_item_links_pending')
        batch_op.drop_index(batch_op.f('ix_item_links_from_item_id'))

    op.drop_table('item_links')
    with op.batch_alter_table('enrollments', schema=None) as batch_op:
        batch_op.drop_index('ix_enrollments_test')

    op.drop_table('enrollments')
