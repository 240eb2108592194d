"""Alembic, once per service: each service has its own migrations folder and version table."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import MetaData, event, text

from shared.db import UTCDateTime, create_database_engine, ensure_database

if TYPE_CHECKING:
    from alembic.config import Config


# Alembic is imported when a migration runs, not with the module: it is a sixth of a web worker's memory,
# and web processes and workers only migrate at start, if at all.
def alembic_config(database_url: str, script_location: Path, version_table: str) -> Config:
    from alembic.config import Config  # noqa: PLC0415

    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.set_main_option("version_table", version_table)
    return config


def upgrade(database_url: str, script_location: Path, version_table: str, revision: str = "head") -> None:
    """Bring one service's tables to ``revision`` (the newest); safe to run from several processes at once."""
    ensure_database(database_url)
    config = alembic_config(database_url, script_location, version_table)
    engine = create_database_engine(database_url)
    if engine.dialect.name == "sqlite":
        # SQLite alters a table by copying it and dropping the old one, which a row referencing it forbids
        # while foreign keys are enforced. The pragma only takes effect outside a transaction.
        _set_sqlite_foreign_keys(engine, enforced=False)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Every web process and clock of a service migrates at start, maybe on several machines:
                # one migrates, the others wait here and then find nothing to do.
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": version_table}
                )
            config.attributes["connection"] = connection
            from alembic import command  # noqa: PLC0415

            command.upgrade(config, revision)
            if connection.dialect.name == "sqlite":
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise RuntimeError(f"the migration left rows pointing at nothing: {broken[:5]}")
    finally:
        engine.dispose()


def _set_sqlite_foreign_keys(engine: Any, enforced: bool) -> None:
    # Every connection of this engine is affected from now on; the engine is this migration's alone.
    @event.listens_for(engine, "connect")
    def _foreign_keys(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA foreign_keys={'ON' if enforced else 'OFF'}")


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    # UTCDateTime only converts on the Python side; the column itself is a plain timezone-aware DateTime.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations(metadata: MetaData) -> None:
    """Body of each service's migrations/env.py (online mode only: we always have a database)."""
    from alembic import context

    config = context.config
    connection = config.attributes.get("connection")
    if connection is None:  # `alembic revision --autogenerate` and friends, without upgrade() around them
        engine = create_database_engine(config.get_main_option("sqlalchemy.url"))
        with engine.connect() as connection:
            _run(context, connection, metadata, config.get_main_option("version_table"))
        engine.dispose()
    else:
        _run(context, connection, metadata, config.get_main_option("version_table"))


def _run(context: Any, connection: Any, metadata: MetaData, version_table: str) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=version_table,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def split_outbox_by_consumer(service: str, consumers_by_type: dict[str, tuple[str, ...]]) -> None:
    """Migration body: one outbox row per event and consumer, acknowledged by the consumer.

    Rows published before this revision count as acknowledged (that was the old meaning of published);
    unpublished rows are due at once. ``consumers_by_type`` is the routing as it stood at that revision.
    """
    import sqlalchemy as sa
    from alembic import op

    old, new = f"{service}_outbox_v1", f"{service}_outbox"
    op.drop_index(f"ix_{service}_outbox_unpublished", table_name=new)
    op.rename_table(new, old)
    table = op.create_table(
        new,
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("consumer", sa.String(length=32), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("publish_attempts", sa.Integer(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_publish_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("event_id", "consumer"),
    )
    op.create_index(f"ix_{service}_outbox_due", new, ["next_publish_at"], unique=False)
    connection = op.get_bind()
    old_table = sa.table(
        old,
        sa.column("event_id", sa.String),
        sa.column("event_type", sa.String),
        sa.column("payload", sa.JSON),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("published_at", sa.DateTime(timezone=True)),
    )
    rows = [
        {
            "event_id": row.event_id,
            "consumer": consumer,
            "event_type": row.event_type,
            "payload": row.payload,
            "created_at": row.created_at,
            "publish_attempts": 0 if row.published_at is None else 1,
            "published_at": row.published_at,
            "next_publish_at": row.created_at if row.published_at is None else None,
            "acknowledged_at": row.published_at,
        }
        for row in connection.execute(sa.select(old_table))
        for consumer in consumers_by_type.get(row.event_type, ())
    ]
    if rows:
        op.bulk_insert(table, rows)
    op.drop_table(old)
    op.create_index(
        f"ix_{service}_consumed_events_consumed_at",
        f"{service}_consumed_events",
        ["consumed_at"],
        unique=False,
    )


def create_outbox_notify_trigger(op: Any, service: str) -> None:
    """On PostgreSQL, NOTIFY the service's clock when a transaction inserts outbox rows (sent at its commit).

    One notification per statement, and PostgreSQL folds identical ones of a transaction into one, so an
    emitting transaction costs no extra round trip. SQLite has no NOTIFY: the embedded clock is in-process.
    """
    if op.get_bind().dialect.name != "postgresql":
        return
    from shared.outbox import outbox_channel  # noqa: PLC0415 (migrations load before the app)

    _create_notify_function(op)
    op.execute(
        f"CREATE TRIGGER {service}_outbox_notify AFTER INSERT ON {service}_outbox "
        f"FOR EACH STATEMENT EXECUTE FUNCTION closeloop_notify_outbox('{outbox_channel(service)}')"
    )


def drop_outbox_notify_trigger(op: Any, service: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        # The function stays: other services' triggers in the same database may use it.
        op.execute(f"DROP TRIGGER IF EXISTS {service}_outbox_notify ON {service}_outbox")


def create_insert_notify_trigger(op: Any, trigger: str, table: str, channel: str, when: str) -> None:
    """On PostgreSQL, NOTIFY ``channel`` at commit when a transaction inserts a row of ``table`` matching
    ``when`` (SQL on ``NEW``): a queue table waking its worker.

    Per row, not per statement: an ``INSERT ... ON CONFLICT DO NOTHING`` that inserted nothing notifies
    nobody. PostgreSQL folds identical notifications of a transaction into one.
    """
    if op.get_bind().dialect.name != "postgresql":
        return
    _create_notify_function(op)
    op.execute(
        f"CREATE TRIGGER {trigger} AFTER INSERT ON {table} FOR EACH ROW WHEN ({when}) "
        f"EXECUTE FUNCTION closeloop_notify_outbox('{channel}')"
    )


def drop_insert_notify_trigger(op: Any, trigger: str, table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")


def _create_notify_function(op: Any) -> None:
    """The triggers' one function: it notifies its first argument, whatever the trigger.

    Every service's migration creates it, each under its own version table's lock, so several may run at
    once (each web process and clock migrates at start); PostgreSQL fails one of two concurrent
    ``CREATE OR REPLACE FUNCTION`` with "tuple concurrently updated": a lock of its own serialises them.
    """
    op.execute("SELECT pg_advisory_xact_lock(hashtext('closeloop_notify_outbox'))")
    op.execute(
        "CREATE OR REPLACE FUNCTION closeloop_notify_outbox() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN PERFORM pg_notify(TG_ARGV[0], ''); RETURN NULL; END $$"
    )
