"""Baseline: the schema as the release before migrations made it (Base.metadata.create_all), frozen here.

A database that release made already has these tables (and no `alembic_version`): each table is created only
where it is missing, so the baseline upgrades it in place without touching a row, and makes a new database
whole. Tables were only ever added before this point (new data went into new tables or JSON fields), never
changed, so a table that exists has exactly these columns. Written with Alembic's autogenerate from the models
of that release; never edit it: a change of schema is a new revision beside it.

Revision ID: 0001_baseline
Revises: (none)
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_baseline"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if 'audit_events' not in existing:
        op.create_table('audit_events',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('audit_id', sa.String(length=32), nullable=False),
        sa.Column('at', sa.Float(), nullable=False),
        sa.Column('event', sa.String(length=40), nullable=False),
        sa.Column('detail', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id')
        )
        op.create_index(op.f('ix_audit_events_at'), 'audit_events', ['at'], unique=False)
        op.create_index(op.f('ix_audit_events_audit_id'), 'audit_events', ['audit_id'], unique=False)
    if 'erasures' not in existing:
        op.create_table('erasures',
        sa.Column('audit_id', sa.String(length=32), nullable=False),
        sa.Column('erased_at', sa.Float(), nullable=False),
        sa.Column('by', sa.String(length=16), nullable=False),
        sa.Column('receipt_digest', sa.String(length=64), nullable=False),
        sa.Column('session_digest', sa.String(length=64), nullable=True),
        sa.Column('receipt', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('audit_id'),
        sa.UniqueConstraint('session_digest')
        )
    if 'operator_keys' not in existing:
        op.create_table('operator_keys',
        sa.Column('id', sa.String(length=16), nullable=False),
        sa.Column('verifier', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('id')
        )
    if 'return_keys' not in existing:
        op.create_table('return_keys',
        sa.Column('locator', sa.String(length=64), nullable=False),
        sa.Column('session_id', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.Column('erased_at', sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint('locator'),
        sa.UniqueConstraint('session_id')
        )
    if 'sessions' not in existing:
        op.create_table('sessions',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('audit_id', sa.String(length=32), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.Column('consented_at', sa.Float(), nullable=True),
        sa.Column('generated_at', sa.Float(), nullable=True),
        sa.Column('identity_expires_at', sa.Float(), nullable=True),
        sa.Column('headshots_expires_at', sa.Float(), nullable=True),
        sa.Column('identity_erased_at', sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('audit_id')
        )
    if 'teams' not in existing:
        op.create_table('teams',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('audit_id', sa.String(length=32), nullable=False),
        sa.Column('name', sa.String(length=120), nullable=False),
        sa.Column('admin_locator', sa.String(length=64), nullable=False),
        sa.Column('public_key', sa.LargeBinary(), nullable=False),
        sa.Column('wrapped_private_key', sa.LargeBinary(), nullable=False),
        sa.Column('look_version', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('admin_locator'),
        sa.UniqueConstraint('audit_id')
        )
    if 'blobs' not in existing:
        op.create_table('blobs',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('session_id', sa.String(length=64), nullable=False),
        sa.Column('category', sa.String(length=16), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('digest', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id')
        )
        op.create_index(op.f('ix_blobs_session_id'), 'blobs', ['session_id'], unique=False)
    if 'consents' not in existing:
        op.create_table('consents',
        sa.Column('session_id', sa.String(length=64), nullable=False),
        sa.Column('policy_version', sa.String(length=64), nullable=False),
        sa.Column('given_at', sa.Float(), nullable=False),
        sa.Column('own_photos', sa.Boolean(), nullable=False),
        sa.Column('adult', sa.Boolean(), nullable=False),
        sa.Column('purpose', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('session_id')
        )
    if 'data_keys' not in existing:
        op.create_table('data_keys',
        sa.Column('session_id', sa.String(length=64), nullable=False),
        sa.Column('category', sa.String(length=16), nullable=False),
        sa.Column('wrapped', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('session_id', 'category')
        )
    if 'jobs' not in existing:
        op.create_table('jobs',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('session_id', sa.String(length=64), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('stage', sa.String(length=32), nullable=False),
        sa.Column('style_ids', sa.Text(), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.Column('finished_at', sa.Float(), nullable=True),
        sa.Column('error_code', sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id')
        )
        op.create_index(op.f('ix_jobs_session_id'), 'jobs', ['session_id'], unique=False)
    if 'owner_keys' not in existing:
        op.create_table('owner_keys',
        sa.Column('session_id', sa.String(length=64), nullable=False),
        sa.Column('category', sa.String(length=16), nullable=False),
        sa.Column('wrapped', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('session_id', 'category')
        )
    if 'team_invites' not in existing:
        op.create_table('team_invites',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('team_id', sa.String(length=32), nullable=False),
        sa.Column('locator', sa.String(length=64), nullable=False),
        sa.Column('label', sa.String(length=80), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.Column('expires_at', sa.Float(), nullable=False),
        sa.Column('max_uses', sa.Integer(), nullable=False),
        sa.Column('uses', sa.Integer(), nullable=False),
        sa.Column('revoked_at', sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(['team_id'], ['teams.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('locator')
        )
        op.create_index(op.f('ix_team_invites_team_id'), 'team_invites', ['team_id'], unique=False)
    if 'team_looks' not in existing:
        op.create_table('team_looks',
        sa.Column('team_id', sa.String(length=32), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('style_id', sa.String(length=64), nullable=False),
        sa.Column('background', sa.String(length=7), nullable=False),
        sa.Column('outfits', sa.Text(), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('retention_days', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['team_id'], ['teams.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('team_id', 'version')
        )
    if 'team_members' not in existing:
        op.create_table('team_members',
        sa.Column('session_id', sa.String(length=64), nullable=False),
        sa.Column('team_id', sa.String(length=32), nullable=False),
        sa.Column('member_id', sa.String(length=32), nullable=False),
        sa.Column('look_version', sa.Integer(), nullable=False),
        sa.Column('joined_at', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['team_id'], ['teams.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('session_id'),
        sa.UniqueConstraint('member_id')
        )
        op.create_index(op.f('ix_team_members_team_id'), 'team_members', ['team_id'], unique=False)
    if 'team_runs' not in existing:
        op.create_table('team_runs',
        sa.Column('run_id', sa.String(length=32), nullable=False),
        sa.Column('session_id', sa.String(length=64), nullable=False),
        sa.Column('team_id', sa.String(length=32), nullable=False),
        sa.Column('look_version', sa.Integer(), nullable=False),
        sa.Column('started_at', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['team_id'], ['teams.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('run_id')
        )
        op.create_index(op.f('ix_team_runs_session_id'), 'team_runs', ['session_id'], unique=False)
        op.create_index(op.f('ix_team_runs_team_id'), 'team_runs', ['team_id'], unique=False)
    if 'team_shares' not in existing:
        op.create_table('team_shares',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('team_id', sa.String(length=32), nullable=False),
        sa.Column('session_id', sa.String(length=64), nullable=True),
        sa.Column('member_id', sa.String(length=32), nullable=True),
        sa.Column('sealed_name', sa.LargeBinary(), nullable=True),
        sa.Column('style_id', sa.String(length=64), nullable=False),
        sa.Column('look_version', sa.Integer(), nullable=True),
        sa.Column('size', sa.Integer(), nullable=True),
        sa.Column('shared_at', sa.Float(), nullable=False),
        sa.Column('expires_at', sa.Float(), nullable=False),
        sa.Column('erased_at', sa.Float(), nullable=True),
        sa.Column('erased_by', sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(['session_id'], ['sessions.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['team_id'], ['teams.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id')
        )
        op.create_index(op.f('ix_team_shares_expires_at'), 'team_shares', ['expires_at'], unique=False)
        op.create_index(op.f('ix_team_shares_session_id'), 'team_shares', ['session_id'], unique=False)
        op.create_index(op.f('ix_team_shares_team_id'), 'team_shares', ['team_id'], unique=False)
    if 'job_claims' not in existing:
        op.create_table('job_claims',
        sa.Column('job_id', sa.String(length=32), nullable=False),
        sa.Column('worker', sa.String(length=64), nullable=False),
        sa.Column('token', sa.String(length=32), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('first_started_at', sa.Float(), nullable=False),
        sa.Column('heartbeat_at', sa.Float(), nullable=False),
        sa.Column('fraction', sa.Float(), nullable=False),
        sa.Column('eta_seconds', sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('job_id')
        )


def downgrade() -> None:
    raise NotImplementedError("The studio never downgrades its schema: restore the database from a backup.")
