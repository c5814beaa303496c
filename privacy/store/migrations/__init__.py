"""Alembic's script directory for the studio's one database: `env.py` and the revisions in `versions/`.

Run only through `privacy.store.schema_migrations.upgrade_to_head`, on the connection the studio hands it.
"""
