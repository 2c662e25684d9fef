"""Private channels, authorized by the policies on `realtime.messages` as Realtime checks them.

Read (at join, and again on a token refresh): in one transaction, probe rows are inserted for
the channel's topic (one per extension, `broadcast` and `presence`) as the connection's owner;
then, as the user's role with its claims and `realtime.topic` set, the probes are selected
back; the rows RLS lets through are what the user may read. Write (at the first send): as the
user, a row is inserted for each extension; a refusal (insufficient_privilege) means no write.
Both transactions are rolled back: nothing is ever kept. The settings are Realtime's own
(`role`, `realtime.topic`, `request.jwt.claims`, `request.jwt.claim.sub`, `...claim.role`,
`request.headers`), so policies written for Supabase work unchanged.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from fnkit.local.realtime.auth import Identity

__all__ = ["Policies", "can_read", "can_write"]

EXTENSIONS = ("broadcast", "presence")

_SETTINGS = (
    "select set_config('role', %s, true), set_config('realtime.topic', %s, true),"
    " set_config('request.jwt.claims', %s, true), set_config('request.jwt.claim.sub', %s, true),"
    " set_config('request.jwt.claim.role', %s, true), set_config('request.headers', %s, true)"
)


@dataclass
class Policies:
    """What a channel's user may do on its topic; None is "not checked yet"."""

    broadcast_read: bool | None = None
    presence_read: bool | None = None
    broadcast_write: bool | None = None
    presence_write: bool | None = None


def _act_as(cur: psycopg.Cursor[Any], who: Identity, topic: str) -> None:
    role = who.role if who.role in ("anon", "authenticated", "service_role") else "anon"
    cur.execute(
        _SETTINGS,
        (role, topic, json.dumps(who.claims), who.sub or "", who.role, "{}"),
    )


def can_read(pool: ConnectionPool[Any], who: Identity, topic: str) -> tuple[bool, bool]:
    """(broadcast read, presence read) for `who` on the private `topic`."""
    probes = {ext: uuid.uuid4() for ext in EXTENSIONS}
    with pool.connection() as conn, conn.transaction(force_rollback=True), conn.cursor() as cur:
        for ext, probe in probes.items():
            cur.execute(
                "insert into realtime.messages (id, topic, extension, private)"
                " values (%s, %s, %s, true)",
                (probe, topic, ext),
            )
        _act_as(cur, who, topic)
        try:
            cur.execute(
                "select id from realtime.messages where id = any(%s)", (list(probes.values()),)
            )
            seen = {row[0] for row in cur.fetchall()}
        except psycopg.errors.InsufficientPrivilege:
            seen = set()
    return probes["broadcast"] in seen, probes["presence"] in seen


def can_write(pool: ConnectionPool[Any], who: Identity, topic: str, extension: str) -> bool:
    """Whether `who` may send `extension` messages (broadcast, presence) on `topic`."""
    with pool.connection() as conn, conn.transaction(force_rollback=True), conn.cursor() as cur:
        _act_as(cur, who, topic)
        try:
            with conn.transaction():
                cur.execute(
                    "insert into realtime.messages (topic, extension, private)"
                    " values (%s, %s, true)",
                    (topic, extension),
                )
        except psycopg.errors.InsufficientPrivilege:
            return False
    return True
