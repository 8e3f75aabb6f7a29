"""eventsourcing's own recorder contract, run against the node's signed recorders.

``node.signedlog.SignedSQLiteRecorder`` overrides ``_insert_events`` and
``node.signedlog_pg.SignedPostgresRecorder`` overrides ``_insert_stored_events``: private hooks
of the pinned eventsourcing release (9.5.6). Here eventsourcing's ``ApplicationRecorderTestCase``
(shipped in the wheel as ``eventsourcing.tests.persistence``) runs against both, each built the
way the node builds it (its factory, ``writer_from_env``, ``create_table``), so an upgrade that
changes what the recorders must do fails here, in one place.

The contract alone would pass if an upgrade stopped calling the hooks at all (the recorders
would then store events unsigned). So after every contract case ``tearDown`` also checks the
signed log the case left behind: each stored event has exactly one envelope, in log order,
chained, sealed by the node's key (the first and last signatures checked: the chain binds the
others), and the origin's Merkle tree covers them all.

Subclassed the way eventsourcing's own tests/persistence_tests/test_sqlite.py and
test_postgres.py do it; the imported abstract base is deleted at the end so that pytest does
not collect it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from uuid import uuid4

import msgpack
import pytest
from eventsourcing.persistence import ApplicationRecorder, StoredEvent
from eventsourcing.tests.persistence import ApplicationRecorderTestCase

from federation.envelope import GENESIS
from federation.merkle import CompactRange, leaf_hash
from federation.suite import SUITES, SigningKey, load_key, save_key
from node.errors import ConfigError
from node.signedlog import KEY_FILE, ORIGIN, EnvelopeWriter, SignedSQLiteFactory
from node.signedlog_pg import SignedPostgresFactory

CONTRACT_ORIGIN = "130102"
CONTRACT_AT = 1_700_000_000_000  # ms; the envelope's time of the wrapped contract events


class ContractWriter(EnvelopeWriter):
    """The node's envelope writer, given events it can sign.

    The contract stores opaque states (``b"state1"``, ``b"{}"``) under made-up topics
    (``topic1``). The node's writer signs the JSON state of a domain event: it takes
    ``recorded_at`` and ``actor`` out of it and refuses floats, so on the contract's events it
    would raise (JSONDecodeError, KeyError) and every insert would fail. This writer only
    wraps each opaque state in the shape of a domain event's state (a fixed time, a contract
    actor, the bytes as hex) and hands the wrapped events to the unchanged ``append``: the
    sealing, chaining, Merkle tree and the same-transaction insert are all the product's.
    What is stored in ``stored_events`` is the contract's event as it stands."""

    def append(
        self,
        cursor: Any,
        stored_events: Sequence[StoredEvent],
        imported: Any = None,
    ) -> None:
        wrapped = [
            StoredEvent(
                originator_id=s.originator_id,
                originator_version=s.originator_version,
                topic=s.topic,
                state=json.dumps(
                    {
                        "recorded_at": CONTRACT_AT,
                        "actor": {"node": self.origin, "user": "contract"},
                        "opaque": s.state.hex(),
                    }
                ).encode(),
            )
            for s in stored_events
        ]
        super().append(cursor, wrapped, imported)


def _contract_writer(recorder: Any) -> ContractWriter:
    """Swap the writer the factory built (from the environment) for the contract's."""
    real: EnvelopeWriter = recorder.writer
    writer = ContractWriter(real.key, real.origin, real.p)
    recorder.writer = writer
    return writer


class SignedLogChecks:
    """After each contract case: the signed log matches the stored events exactly."""

    recorders: list[tuple[Any, SigningKey]]

    def setUp(self) -> None:
        self.recorders = []
        super().setUp()  # type: ignore[misc]

    def tearDown(self) -> None:
        try:
            for recorder, key in self.recorders:
                self.check_signed_log(recorder, key)
        finally:
            for recorder, _ in self.recorders:
                recorder.datastore.close()
            super().tearDown()  # type: ignore[misc]

    def check_signed_log(self, recorder: Any, key: SigningKey) -> None:
        p = recorder.writer.p
        notifications = list(self._all_notifications(recorder))
        with recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(
                f"SELECT seq, raw FROM envelopes WHERE origin = {p} ORDER BY seq",
                (CONTRACT_ORIGIN,),
            )
            envelopes = [(int(r["seq"]), bytes(r["raw"])) for r in cursor.fetchall()]
            cursor.execute(f"SELECT size, peaks FROM merkle WHERE origin = {p}", (CONTRACT_ORIGIN,))
            merkle = cursor.fetchall()
        assert len(envelopes) == len(notifications), (
            f"{len(notifications)} events stored, {len(envelopes)} envelopes: "
            "the signed recorder's insert hook was not called for every insert"
        )
        if not notifications:
            assert not merkle
            return
        suite = SUITES[key.suite]
        prev, tree = GENESIS, CompactRange()
        last = len(envelopes) - 1
        for i, (n, (seq, raw)) in enumerate(zip(notifications, envelopes, strict=True)):
            outer = msgpack.unpackb(raw, raw=False)
            body = msgpack.unpackb(outer["body"], raw=False)
            assert seq == body["seq"] == i + 1
            if i in (0, last):  # every envelope is sealed alike; the chain binds the others
                assert suite.verify(key.public, outer["body"], outer["sig"])
            assert body["origin"] == CONTRACT_ORIGIN
            assert body["prev"] == prev
            assert (body["type"], body["aggregate"], body["version"]) == (
                n.topic,
                str(n.originator_id),
                n.originator_version,
            ), f"envelope {seq} is not of the event at log position {n.id}"
            assert body["payload"] == {"opaque": n.state.hex()}
            prev = hashlib.sha256(raw).digest()
            tree.append(leaf_hash(raw))
        [row] = merkle
        assert int(row["size"]) == tree.size
        assert bytes(row["peaks"]) == b"".join(tree.peaks)

    @staticmethod
    def _all_notifications(recorder: ApplicationRecorder) -> Iterator[Any]:
        after = 0
        while page := recorder.select_notifications(after, 1000, inclusive_of_start=False):
            yield from page
            after = page[-1].id


def _signing_env(directory: Path) -> tuple[dict[str, str], SigningKey]:
    """The node's signing settings (a key file, the origin); one key per case."""
    key_file = directory / "node.key"
    if not key_file.exists():
        save_key(SigningKey.generate(), key_file)
    return {KEY_FILE: str(key_file), ORIGIN: CONTRACT_ORIGIN}, load_key(key_file)


class TestSignedSQLiteRecorder(SignedLogChecks, ApplicationRecorderTestCase):
    """On a database file (the node's store is one), as the node configures it."""

    directory: Path

    @pytest.fixture(autouse=True)
    def _directory(self, tmp_path: Path) -> None:
        self.directory = tmp_path

    def create_recorder(self) -> Any:
        env, key = _signing_env(self.directory)
        factory = SignedSQLiteFactory(
            {
                "SQLITE_DBNAME": str(self.directory / "events.sqlite"),
                "SQLITE_LOCK_TIMEOUT": "30",
                **env,
            }
        )
        recorder = factory.application_recorder()
        _contract_writer(recorder)
        self.recorders.append((recorder, key))
        return recorder


class TestSignedPostgresRecorder(SignedLogChecks, ApplicationRecorderTestCase):
    """On the test session's PostgreSQL server (tests/servers.py), a new database per case."""

    pg_env: dict[str, str]
    directory: Path

    @pytest.fixture(autouse=True)
    def _database(self, postgres: Any, tmp_path: Path) -> None:
        # unittest cases take no fixture arguments: the settings reach them as attributes
        self.directory = tmp_path
        dbname = postgres.create_database(f"contract_{uuid4().hex[:16]}")
        self.pg_env = {
            "POSTGRES_DBNAME": dbname,
            "POSTGRES_HOST": "127.0.0.1",
            "POSTGRES_PORT": str(postgres.port),
            "POSTGRES_USER": "anjian",
            "POSTGRES_PASSWORD": "",
        }

    def create_recorder(self) -> Any:
        env, key = _signing_env(self.directory)
        factory = SignedPostgresFactory({**self.pg_env, **env})
        recorder = factory.application_recorder()
        _contract_writer(recorder)
        self.recorders.append((recorder, key))
        return recorder

    def test_insert_subscribe(self) -> None:
        # optional in the contract (SQLite cannot subscribe); eventsourcing runs it on
        # PostgreSQL: the signed recorder still sends the notification its listeners wait for
        self.optional_test_insert_subscribe()


del ApplicationRecorderTestCase  # the abstract contract itself is not a test


def test_the_signed_postgres_recorder_refuses_inserts_through_db_functions(postgres, tmp_path):
    """eventsourcing's insert through PostgreSQL functions would never reach the envelope
    writer: events would be stored unsigned. The signed recorder refuses such a datastore."""
    env, _ = _signing_env(tmp_path)
    dbname = postgres.create_database(f"contract_{uuid4().hex[:16]}")
    factory = SignedPostgresFactory(
        {
            "POSTGRES_DBNAME": dbname,
            "POSTGRES_HOST": "127.0.0.1",
            "POSTGRES_PORT": str(postgres.port),
            "POSTGRES_USER": "anjian",
            "POSTGRES_PASSWORD": "",
            "POSTGRES_ENABLE_DB_FUNCTIONS": "yes",
            **env,
        }
    )
    with pytest.raises(ConfigError, match="PostgreSQL functions"):
        factory.application_recorder()
