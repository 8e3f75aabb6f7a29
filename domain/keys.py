"""Key documents (certifications, revocations) a node issues, recorded in its own log so they
replicate and are audited like everything else (docs/architecture.md §5). The documents
themselves are signed bytes the node checks before recording; the domain keeps them verbatim
(base64)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from domain.base import Aggregate, Command, Context, Event

KEYS_NAMESPACE = uuid.UUID("9d3c1f0a-2e44-5b7b-8a61-5f0e2c7d4b93")


def register_id(origin: str) -> uuid.UUID:
    return uuid.uuid5(KEYS_NAMESPACE, origin)


class RecordKeyDocument(Command):
    kind: Literal["certification", "revocation"]
    subject_origin: str = Field(min_length=1, max_length=32)
    subject_key: str = Field(min_length=1, max_length=64, description="Key id of the subject key.")
    document: str = Field(
        min_length=1, max_length=20_000, description="The signed document, base64."
    )


@dataclass(frozen=True, kw_only=True)
class KeyRegisterOpened(Event):
    NAME = "keys.register_opened/1"

    def apply(self, agg: KeyRegister) -> None:
        pass


@dataclass(frozen=True, kw_only=True)
class KeyDocumentRecorded(Event):
    NAME = "keys.document_recorded/1"
    kind: str
    subject_origin: str
    subject_key: str
    document: str

    def apply(self, agg: KeyRegister) -> None:
        agg.documents.append(
            {
                "kind": self.kind,
                "subject_origin": self.subject_origin,
                "subject_key": self.subject_key,
            }
        )


class KeyRegister(Aggregate):
    KIND = "keys"
    DERIVED_ID = True

    def __init__(self, id: Any) -> None:
        super().__init__(id)
        self.documents: list[dict[str, str]] = []

    @classmethod
    def open(cls, ctx: Context) -> KeyRegister:
        return cls.start(register_id(ctx.actor.node), KeyRegisterOpened, ctx)

    def record(self, cmd: RecordKeyDocument, ctx: Context) -> None:
        self._trigger(KeyDocumentRecorded, ctx, **cmd.model_dump())

    def state(self) -> dict[str, Any]:
        return {"documents": self.documents}


KeyRegisterOpened.CREATES = KeyRegister
