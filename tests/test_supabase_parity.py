"""The local bootstrap against Supabase's own definitions (issue 16).

Lists from the catalog every function, grant and attribute in auth, realtime, storage and
supabase_functions that the product's migrations rely on, and compares them with the fact
table in `tests/supabase_facts.py`, so a drift of `fnkit/sql/bootstrap.sql` (or of the table,
after reading Supabase's migrations again) fails here. Differences that cannot go away are
listed in docs/deploy.md ("Local stand-ins") and are not in the table.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg.rows import TupleRow

from tests import supabase_facts as facts

Conn = psycopg.Connection[TupleRow]


def function_drift(conn: Conn) -> list[str]:
    """Every way the database's functions differ from Supabase's facts, as sentences."""
    drift = []
    for signature, fact in facts.FUNCTIONS.items():
        row = conn.execute(
            """
            select p.prosecdef, p.proconfig, p.provolatile, l.lanname,
                   array(select r from unnest(%s::text[]) r
                         where pg_catalog.has_function_privilege(r, p.oid, 'EXECUTE'))
            from pg_catalog.pg_proc p join pg_catalog.pg_language l on l.oid = p.prolang
            where p.oid = pg_catalog.to_regprocedure(%s)
            """,
            (list(facts.API_ROLES), signature),
        ).fetchone()
        if row is None:
            drift.append(f"{signature}: missing")
            continue
        definer, config, volatility, language, executors = row
        paths = [c.split("=", 1)[1] for c in config or [] if c.startswith("search_path=")]
        found: dict[str, Any] = {
            "security": "definer" if definer else "invoker",
            "search_path": paths[0] if paths else None,
            "volatility": volatility,
            "language": language,
            "execute": frozenset(executors),
        }
        drift += [
            f"{signature}: {key} is {found[key]!r}, Supabase's is {value!r}"
            for key, value in fact.items()
            if found[key] != value
        ]
    return drift


def grant_drift(conn: Conn) -> list[str]:
    """Table privileges, RLS, schema usage, defaults, auth.users columns and role attributes."""
    drift = []
    for table, roles in facts.TABLES.items():
        for role, privileges in roles.items():
            have = {
                p
                for p in ("SELECT", "INSERT", "UPDATE", "DELETE")
                if conn.execute(
                    "select pg_catalog.has_table_privilege(%s, %s::regclass, %s)", (role, table, p)
                ).fetchone()
                == (True,)
            }
            if have != privileges:
                drift.append(f"{table} for {role}: {sorted(have)}, Supabase's {sorted(privileges)}")
        rls = conn.execute(
            "select relrowsecurity from pg_catalog.pg_class where oid = %s::regclass", (table,)
        ).fetchone()
        if rls != (table in facts.RLS_ENABLED,):
            drift.append(f"{table}: row level security {rls}")
    for schema in facts.SCHEMA_USAGE:
        for role in facts.API_ROLES:
            usage = conn.execute(
                "select pg_catalog.has_schema_privilege(%s, %s, 'USAGE')", (role, schema)
            ).fetchone()
            if usage != (True,):
                drift.append(f"schema {schema}: no USAGE for {role}")
    for column, default in facts.COLUMN_DEFAULTS.items():
        schema, table, name = column.split(".")
        found = conn.execute(
            "select column_default from information_schema.columns"
            " where table_schema = %s and table_name = %s and column_name = %s",
            (schema, table, name),
        ).fetchone()
        if found != (default,):
            drift.append(f"{column}: default {found}, Supabase's {default}")
    for name, data_type in facts.AUTH_USERS_COLUMNS.items():
        found = conn.execute(
            "select data_type from information_schema.columns"
            " where table_schema = 'auth' and table_name = 'users' and column_name = %s",
            (name,),
        ).fetchone()
        if found != (data_type,):
            drift.append(f"auth.users.{name}: {found}, Supabase's {data_type}")
    for role, attributes in facts.ROLES.items():
        row = conn.execute(
            "select rolcanlogin, rolinherit, rolbypassrls from pg_catalog.pg_roles"
            " where rolname = %s",
            (role,),
        ).fetchone()
        if row != tuple(attributes.values()):
            drift.append(f"role {role}: {row}, Supabase's {attributes}")
    return drift


def test_functions_match_supabase(db_admin: Conn) -> None:
    assert function_drift(db_admin) == []


def test_grants_and_attributes_match_supabase(db_admin: Conn) -> None:
    assert grant_drift(db_admin) == []


@pytest.mark.parametrize(
    ("alteration", "expected"),
    [
        (
            "alter function realtime.send(jsonb, text, text, boolean) security definer",
            "realtime.send(jsonb,text,text,boolean): security is 'definer', Supabase's is 'invoker'",
        ),
        (
            "alter function auth.uid() set search_path = ''",
            "auth.uid(): search_path is '\"\"', Supabase's is None",
        ),
        (
            "revoke execute on function auth.jwt() from public, anon",
            "auth.jwt(): execute is",
        ),
        (
            "grant delete on realtime.messages to authenticated",
            "realtime.messages for authenticated",
        ),
        (
            "alter table realtime.messages alter column private set default true",
            "realtime.messages.private: default",
        ),
    ],
)
def test_a_drift_fails_the_comparison(db_admin: Conn, alteration: str, expected: str) -> None:
    """The comparison can fail: each alteration, in a rolled-back transaction, is reported."""
    with psycopg.connect(db_admin.info.dsn) as conn:  # not autocommit: rolled back at the end
        conn.execute(alteration)  # type: ignore[arg-type]
        drift = function_drift(conn) + grant_drift(conn)
        conn.rollback()
    assert any(line.startswith(expected) for line in drift), drift
    assert function_drift(db_admin) + grant_drift(db_admin) == []
