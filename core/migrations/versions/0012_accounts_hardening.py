"""accounts hardening: failed sign-ins for throttling, and the first-run claim

Revision ID: 0012
Revises: 0006
Create Date: 2026-12-01 22:46:32.717180

A store that already has users was set up before this revision: it gets its claim row (the
lowest admin, else the lowest user), so the first-run page stays closed at the database too.
"""
from __future__ import annotations

import datetime as dt

from alembic import op
import sqlalchemy as sa
import core.model.base


revision = '0012'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('login_failures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', core.model.base.UTCDateTime(), nullable=False),
    sa.Column('account', sa.String(length=254), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failures'))
    )
    with op.batch_alter_table('login_failures', schema=None) as batch_op:
        batch_op.create_index('ix_login_failures_account_at', ['account', 'at'], unique=False)
        batch_op.create_index('ix_login_failures_address_at', ['address', 'at'], unique=False)
        batch_op.create_index(batch_op.f('ix_login_failures_at'), ['at'], unique=False)

    op.create_table('setup_claim',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('at', core.model.base.UTCDateTime(), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_setup_claim_singleton')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_setup_claim_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_setup_claim'))
    )
    bind = op.get_bind()
    first = bind.execute(sa.text(
        "SELECT id FROM users ORDER BY CASE WHEN role = 'admin' THEN 0 ELSE 1 END, id LIMIT 1"
    )).scalar()
    if first is not None:
        bind.execute(sa.text("INSERT INTO setup_claim (id, user_id, at) VALUES (1, :user, :at)"),
                     {"user": first, "at": dt.datetime.now(dt.UTC).replace(tzinfo=None)})


def downgrade() -> None:
    op.drop_table('setup_claim')
    with op.batch_alter_table('login_failures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_failures_at'))
        batch_op.drop_index('ix_login_failures_address_at')
        batch_op.drop_index('ix_login_failures_account_at')

    op.drop_table('login_failures')
