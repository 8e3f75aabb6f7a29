"""The signed event store on PostgreSQL (``pip install 'anjian[postgres]'``): the same envelope
writer as on SQLite, run after eventsourcing has taken its table lock."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresFactory
from psycopg.rows import dict_row
from psycopg.sql import SQL

from domain.i18n import _
from node.errors import ConfigError
from node.signedlog import TABLES, EnvelopeWriter, writer_from_env


class SignedPostgresRecorder(PostgresApplicationRecorder):
    writer: EnvelopeWriter

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.datastore.enable_db_functions:  # its insert would never reach the writer below
            raise ConfigError(_("the signed store cannot insert through PostgreSQL functions"))
        self.sql_create_statements.extend(SQL(t.format(blob="BYTEA")).format() for t in TABLES)

    def _insert_stored_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        super()._insert_stored_events(curs, stored_events, **kwargs)  # takes the table lock
        # a cursor of its own: eventsourcing reads the notification ids off ``curs`` next
        if kwargs.get("from_above"):  # those keep their envelopes in ``downward``
            return
        with curs.connection.cursor(row_factory=dict_row) as mine:
            self.writer.append(mine, stored_events, kwargs.get("imported"))


class SignedPostgresFactory(PostgresFactory):
    def application_recorder(self) -> SignedPostgresRecorder:
        recorder = SignedPostgresRecorder(
            datastore=self.datastore, events_table_name="stored_events"
        )
        recorder.writer = writer_from_env(self.env, "%s")
        if self.env_create_table():
            recorder.create_table()
        return recorder
