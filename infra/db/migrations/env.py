"""Alembic environment: runs on the connection handed over by :func:`infra.db.migrate`."""

from alembic import context

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    render_as_batch=connection.dialect.name == "sqlite",
    version_table="alembic_version",
)
with context.begin_transaction():
    context.run_migrations()
