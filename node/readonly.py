"""Reading a node's store without opening it for writing: auditors, key documents, and exports
read the tables of a node that may be serving (SQLite read-only, or a PostgreSQL connection)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from typing import Any

from domain.i18n import _
from node.config import Config
from node.errors import ConfigError, said

Rows = Callable[..., list[Any]]  # (sql with ? placeholders, *params) -> rows by column name


@contextmanager
def read_only(config: Config) -> Iterator[tuple[Rows, str]]:
    """A query function on the node's store, and the column that orders stored events."""
    if config.store.backend == "sqlite":
        if not config.sqlite_file.exists():
            raise ConfigError(_("{file}: no event store to audit", file=config.sqlite_file))
        db = sqlite3.connect(f"file:{config.sqlite_file}?mode=ro", uri=True)
        db.row_factory = sqlite3.Row
        with closing(db):
            yield (lambda sql, *params: db.execute(sql, params).fetchall()), "rowid"
        return
    try:
        import psycopg
        from psycopg.rows import dict_row
    except ImportError:
        raise ConfigError(_("the PostgreSQL store needs: pip install 'anjian[postgres]'")) from None
    pg = config.store.postgres
    try:
        conn = psycopg.connect(
            dbname=pg.dbname,
            host=pg.host,
            port=pg.port,
            user=pg.user,
            password=pg.password,
            row_factory=dict_row,
            autocommit=True,
        )
    except psycopg.Error as e:
        raise ConfigError(_("cannot reach the PostgreSQL store: {error}", error=said(e))) from None
    with conn:
        yield (
            (lambda sql, *params: conn.execute(sql.replace("?", "%s"), params).fetchall()),
            "notification_id",
        )
