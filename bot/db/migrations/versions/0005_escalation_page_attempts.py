"""escalation page attempts (committed before a page is sent); who sent a manual page

Revision ID: 0005_page_attempts
Revises: 0002_escalation
Create Date: 2026-11-22 12:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bot.db.types

revision: str = '0005_page_attempts'
down_revision: str | Sequence[str] | None = '0002_escalation'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('escalation_page_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('step_key', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('recipient', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('sends', sa.Integer(), nullable=False),
    sa.Column('deferrals', sa.Integer(), nullable=False),
    sa.Column('created_at', bot.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', bot.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('detail', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('incident_id', 'step_key', 'recipient', name='uq_escalation_page_attempts_step_recipient')
    )
    with op.batch_alter_table('escalation_pages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('paged_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('escalation_pages', schema=None) as batch_op:
        batch_op.drop_column('paged_by')
    op.drop_table('escalation_page_attempts')
