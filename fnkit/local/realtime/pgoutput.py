"""Decode `pgoutput` (logical replication protocol version 1), the plugin Realtime reads.

psycopg 3 does not speak the replication protocol, so the slot is read through SQL
(`pg_logical_slot_get_binary_changes(..., 'proto_version', '1', 'publication_names', ...)`):
each row's `data` is one protocol message. Only what Postgres Changes needs is decoded: Begin
(the commit timestamp and LSN), Relation (a table's name and columns), Insert, Update and
Delete with their tuples in text form. Truncate, Type and Origin messages are skipped.

A tuple value is text, None for SQL NULL, or `UNCHANGED` for a TOASTed value the update did not
touch (the old row, sent in full under REPLICA IDENTITY FULL, has it).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

__all__ = ["UNCHANGED", "Change", "Decoder", "Relation"]

_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


class _Unchanged:
    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED = _Unchanged()
Value = str | None | _Unchanged
Tuple = dict[str, Value]


@dataclass(frozen=True)
class Relation:
    relid: int
    schema: str
    table: str
    columns: tuple[str, ...]


@dataclass
class Change:
    """One row change of a committed transaction."""

    op: str  # INSERT, UPDATE, DELETE
    relation: Relation
    commit_time: datetime
    commit_lsn: int
    new: Tuple | None = None
    old: Tuple | None = None


@dataclass
class _Reader:
    data: bytes
    at: int = 0

    def take(self, n: int) -> bytes:
        chunk = self.data[self.at : self.at + n]
        if len(chunk) != n:
            raise ValueError("truncated pgoutput message")
        self.at += n
        return chunk

    def unpack(self, fmt: str) -> int:
        (value,) = struct.unpack(fmt, self.take(struct.calcsize(fmt)))
        return int(value)

    def string(self) -> str:
        end = self.data.index(b"\0", self.at)
        text = self.data[self.at : end].decode()
        self.at = end + 1
        return text

    def tuple(self, columns: tuple[str, ...]) -> Tuple:
        values: Tuple = {}
        for name in columns[: self.unpack("!h")]:
            kind = self.take(1)
            if kind == b"t":
                values[name] = self.take(self.unpack("!i")).decode()
            elif kind == b"u":
                values[name] = UNCHANGED
            else:  # b"n"
                values[name] = None
        return values


@dataclass
class Decoder:
    """Stateful across calls: Relation messages precede the changes that use them, and a
    transaction's Begin its changes; both may arrive in an earlier batch."""

    relations: dict[int, Relation] = field(default_factory=dict)
    commit_time: datetime = _PG_EPOCH
    commit_lsn: int = 0

    def feed(self, messages: list[bytes]) -> list[Change]:
        changes: list[Change] = []
        for message in messages:
            change = self._one(message)
            if change is not None:
                changes.append(change)
        return changes

    def _one(self, message: bytes) -> Change | None:
        kind, reader = message[:1], _Reader(message, 1)
        if kind == b"B":
            self.commit_lsn = reader.unpack("!Q")  # the transaction's commit LSN
            self.commit_time = _PG_EPOCH + timedelta(microseconds=reader.unpack("!q"))
        elif kind == b"R":
            relid = reader.unpack("!I")
            schema, table = reader.string(), reader.string()
            reader.take(1)  # replica identity setting
            columns = []
            for _ in range(reader.unpack("!h")):
                reader.take(1)  # flags (part of the key)
                columns.append(reader.string())
                reader.take(8)  # type oid, type modifier
            self.relations[relid] = Relation(relid, schema, table, tuple(columns))
        elif kind in (b"I", b"U", b"D"):
            return self._row(kind, reader)
        return None

    def _row(self, kind: bytes, reader: _Reader) -> Change:
        relation = self.relations[reader.unpack("!I")]
        op = {b"I": "INSERT", b"U": "UPDATE", b"D": "DELETE"}[kind]
        change = Change(op, relation, self.commit_time, self.commit_lsn)
        tag = reader.take(1)
        if tag in (b"K", b"O"):  # the old row: key columns, or all with REPLICA IDENTITY FULL
            change.old = reader.tuple(relation.columns)
            tag = reader.take(1) if kind == b"U" else b""
        if tag == b"N":
            change.new = reader.tuple(relation.columns)
        return change
