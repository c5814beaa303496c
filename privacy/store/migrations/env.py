"""Alembic's environment: run the revisions on the connection the studio hands over, never a URL of its own.

The connection comes in `config.attributes["connection"]`, already inside the transaction that holds the schema
lock (privacy.store.schema_migrations), so the revisions and the version stamp commit together with it.
"""

from alembic import context

connection = context.config.attributes["connection"]
# render_as_batch: SQLite alters a table by copying it; a future revision's batch_alter_table works on both.
context.configure(connection=connection, target_metadata=None, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
