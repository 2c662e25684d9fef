"""What a Postgres Changes subscriber receives for one row change, and whether it may.

Shapes follow Realtime's `realtime.apply_rls`: `{schema, table, commit_timestamp, type,
columns, errors, record?, old_record?}`, values typed as `to_jsonb` types them (Postgres does the
conversion: the pgoutput text values go through `json_populate_record` on the table's row
type), and only the columns the subscriber's role may select. Under RLS an INSERT or UPDATE is
sent only when, as the subscriber's role with its claims, the committed row is visible by its
primary key (checked in the database by a temporary function, one round trip per change); a
DELETE cannot be checked (the row is gone), so it goes to every matching
subscriber with only the primary key in `old_record`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from fnkit.local.realtime.pgoutput import UNCHANGED, Change, Relation, Tuple

__all__ = [
    "TableInfo",
    "build_payload",
    "install_probe",
    "refusal",
    "role_refusal",
    "table_info",
    "typed_rows",
    "visible",
]

DB_ROLES = ("anon", "authenticated", "service_role")


@dataclass(frozen=True)
class TableInfo:
    columns: tuple[tuple[str, str], ...]  # (name, type name) in attnum order
    primary_key: tuple[str, ...]
    rls: bool
    selectable: dict[str, frozenset[str]]  # role -> columns it may select

    @property
    def types(self) -> dict[str, str]:
        return dict(self.columns)


def table_info(conn: psycopg.Connection[Any], relation: Relation) -> TableInfo:
    rows = conn.execute(
        "select a.attname, t.typname, coalesce(a.attnum = any(i.indkey), false),"
        " has_column_privilege('anon', a.attrelid, a.attname, 'SELECT'),"
        " has_column_privilege('authenticated', a.attrelid, a.attname, 'SELECT'),"
        " has_column_privilege('service_role', a.attrelid, a.attname, 'SELECT')"
        " from pg_attribute a join pg_type t on t.oid = a.atttypid"
        " left join pg_index i on i.indrelid = a.attrelid and i.indisprimary"
        " where a.attrelid = %s and a.attnum > 0 and not a.attisdropped order by a.attnum",
        (relation.relid,),
    ).fetchall()
    rls = conn.execute(
        "select relrowsecurity from pg_class where oid = %s", (relation.relid,)
    ).fetchone()
    selectable = {
        role: frozenset(row[0] for row in rows if row[3 + i]) for i, role in enumerate(DB_ROLES)
    }
    return TableInfo(
        columns=tuple((row[0], row[1]) for row in rows),
        primary_key=tuple(row[0] for row in rows if row[2]),
        rls=bool(rls and rls[0]),
        selectable=selectable,
    )


def typed_rows(
    conn: psycopg.Connection[Any], change: Change
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(new, old) with JSON-typed values; an unchanged TOAST value is taken from the old row."""
    old_text = _text(change.old) if change.old is not None else None
    new_text = None
    if change.new is not None:
        new_text = {
            name: (old_text or {}).get(name) if value is UNCHANGED else value
            for name, value in change.new.items()
            if value is not UNCHANGED or (old_text is not None and name in old_text)
        }
    relation = sql.Identifier(change.relation.schema, change.relation.table)
    query = sql.SQL(
        "select to_jsonb(json_populate_record(null::{t}, %s::json)),"
        " to_jsonb(json_populate_record(null::{t}, %s::json))"
    ).format(t=relation)
    row = conn.execute(
        query,
        (json.dumps(new_text) if new_text else None, json.dumps(old_text) if old_text else None),
    ).fetchone()
    assert row is not None
    new = {k: v for k, v in row[0].items() if k in new_text} if new_text and row[0] else None
    old = {k: v for k, v in row[1].items() if k in old_text} if old_text and row[1] else None
    return new, old


def _text(values: Tuple) -> dict[str, str | None]:
    return {k: v for k, v in values.items() if v is not UNCHANGED}  # type: ignore[misc]


def build_payload(
    change: Change,
    info: TableInfo,
    role: str,
    new: dict[str, Any] | None,
    old: dict[str, Any] | None,
    select: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """The `data` of a postgres_changes message for a subscriber acting as `role`, narrowed
    to the `select`ed columns and the primary key when the binding names some."""
    allowed = info.selectable.get(role, frozenset())
    if select is not None:
        allowed = allowed & frozenset((*select, *info.primary_key))
    data: dict[str, Any] = {
        "schema": change.relation.schema,
        "table": change.relation.table,
        "commit_timestamp": _timestamp(change.commit_time),
        "type": change.op,
        "columns": [{"name": n, "type": t} for n, t in info.columns if n in allowed],
        "errors": None,
    }
    if change.op in ("INSERT", "UPDATE"):
        data["record"] = {k: v for k, v in (new or {}).items() if k in allowed}
    if change.op == "UPDATE":
        data["old_record"] = {k: v for k, v in (old or {}).items() if k in allowed}
    if change.op == "DELETE":
        data["old_record"] = {
            k: v
            for k, v in (old or {}).items()
            if k in allowed and (not info.rls or k in info.primary_key)
        }
    return data


def refusal(change: Change, info: TableInfo) -> dict[str, Any] | None:
    """Realtime's error for a table without a primary key (INSERT and UPDATE cannot be
    checked against a committed row without one)."""
    if change.op != "DELETE" and not info.primary_key:
        return _error(change, "Error 400: Bad Request, no primary key")
    return None


def role_refusal(change: Change, info: TableInfo, role: str) -> dict[str, Any] | None:
    """Realtime's error for a role that may not select the primary key."""
    allowed = info.selectable.get(role, frozenset())
    if change.op != "DELETE" and not all(k in allowed for k in info.primary_key):
        return _error(change, "Error 401: Unauthorized")
    return None


def _error(change: Change, message: str) -> dict[str, Any]:
    record: dict[str, Any] = {"schema": change.relation.schema, "table": change.relation.table,
                              "type": change.op, "columns": None, "commit_timestamp": None,
                              "errors": [message]}  # fmt: skip
    record["record"] = None
    if change.op == "UPDATE":
        record["old_record"] = None
    return record


def _timestamp(moment: datetime) -> str:
    """Realtime's format: milliseconds, UTC, a literal Z."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def visible(
    conn: psycopg.Connection[Any],
    change: Change,
    info: TableInfo,
    new: dict[str, Any],
    viewers: list[tuple[str, str]],
) -> list[bool]:
    """For each (role, claims as JSON text): may it select the committed row, by primary key,
    under RLS. Alike viewers are asked once; all in one call, the claims passed as one JSON
    document (a text[] of JSON would be escaped character by character)."""
    if not info.primary_key or any(new.get(k) is None for k in info.primary_key):
        return [False] * len(viewers)
    relation = sql.Identifier(change.relation.schema, change.relation.table)
    where = sql.SQL(" and ").join(
        sql.SQL("{} = {}").format(sql.Identifier(k), sql.Literal(_literal(new[k])))
        for k in info.primary_key
    )
    probe = sql.SQL("select exists(select 1 from {} where {})").format(relation, where)
    unique = list(dict.fromkeys(viewers))
    document = "[" + ",".join(f"[{json.dumps(role)},{claims}]" for role, claims in unique) + "]"
    row = conn.execute(
        "select pg_temp.fnkit_realtime_visible(%s, %s::jsonb)", (probe.as_string(conn), document)
    ).fetchone()
    verdicts = dict(zip(unique, row[0] if row else [], strict=False))
    return [bool(verdicts.get(viewer)) for viewer in viewers]


PROBE_FUNCTION = """
create or replace function pg_temp.fnkit_realtime_visible(probe text, viewers jsonb)
returns boolean[] language plpgsql as $$
declare
  verdicts boolean[] := '{}';
  viewer jsonb;
  seen boolean;
begin
  for viewer in select value from jsonb_array_elements(viewers) loop
    perform set_config('role', viewer ->> 0, true),
      set_config('request.jwt.claims', (viewer -> 1)::text, true),
      set_config('request.jwt.claim.sub', coalesce(viewer -> 1 ->> 'sub', ''), true),
      set_config('request.jwt.claim.role', viewer ->> 0, true);
    begin
      execute probe into seen;
    exception when insufficient_privilege then
      seen := false;
    end;
    perform set_config('role', null, true);
    verdicts := verdicts || coalesce(seen, false);
  end loop;
  return verdicts;
end;
$$;
"""


def install_probe(conn: psycopg.Connection[Any]) -> None:
    """The per-subscriber policy check, as Realtime's `apply_rls` loops it in the database:
    one round trip per change, whatever the number of subscribers. A temporary function, so
    it lives and dies with the feed's session and the database keeps no trace of it."""
    conn.execute(PROBE_FUNCTION)


def _literal(value: Any) -> str:
    return json.dumps(value) if isinstance(value, dict | list) else str(value)
