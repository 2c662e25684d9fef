"""Facts about a Supabase project's database that the product's migrations rely on, written
down as data (not Supabase's code), so `tests/test_supabase_parity.py` can compare the local
bootstrap (`fnkit/sql/bootstrap.sql`) with them.

Sources, read for this table: supabase/realtime's tenant migrations (the squashed
definitions of realtime.topic/send/broadcast_changes and the grants on realtime.messages),
supabase/postgres's init scripts (auth helpers, supabase_functions.http_request's
`security definer`, `search_path = supabase_functions`, execute revoked from PUBLIC and
granted to the API roles), supabase/storage's tenant migrations (the path helpers, immutable
plpgsql in current releases; ALL on storage.objects/buckets for the API roles) and
supabase/auth's migrations (auth.users, readable by no API role).

Function facts: security ("definer"/"invoker"), search_path (None: not set), volatility
("i"/"s"/"v" as pg_proc.provolatile), language, and which API roles may execute it.
"""

from __future__ import annotations

from typing import Final, TypedDict

API_ROLES: Final = ("anon", "authenticated", "service_role")
ALL_API: Final = frozenset(API_ROLES)


class FunctionFact(TypedDict):
    security: str
    search_path: str | None
    volatility: str
    language: str
    execute: frozenset[str]


def _fn(security: str, volatility: str, language: str, search_path: str | None = None,
        execute: frozenset[str] = ALL_API) -> FunctionFact:  # fmt: skip
    return FunctionFact(security=security, search_path=search_path, volatility=volatility,
                        language=language, execute=execute)  # fmt: skip


FUNCTIONS: Final[dict[str, FunctionFact]] = {
    "auth.uid()": _fn("invoker", "s", "sql"),
    "auth.role()": _fn("invoker", "s", "sql"),
    "auth.email()": _fn("invoker", "s", "sql"),
    "auth.jwt()": _fn("invoker", "s", "sql"),
    "realtime.topic()": _fn("invoker", "s", "sql"),
    "realtime.send(jsonb,text,text,boolean)": _fn("invoker", "v", "plpgsql"),
    "realtime.broadcast_changes(text,text,text,text,text,record,record,text)": _fn(
        "invoker", "v", "plpgsql"
    ),
    "storage.foldername(text)": _fn("invoker", "i", "plpgsql"),
    "storage.filename(text)": _fn("invoker", "i", "plpgsql"),
    "storage.extension(text)": _fn("invoker", "i", "plpgsql"),
    "supabase_functions.http_request()": _fn(
        "definer", "v", "plpgsql", search_path="supabase_functions"
    ),
}

# Table privileges of the API roles (SELECT, INSERT, UPDATE, DELETE), and whether RLS is on.
TABLES: Final[dict[str, dict[str, frozenset[str]]]] = {
    "auth.users": {role: frozenset() for role in API_ROLES},
    "realtime.messages": {role: frozenset({"SELECT", "INSERT", "UPDATE"}) for role in API_ROLES},
    "storage.objects": {
        role: frozenset({"SELECT", "INSERT", "UPDATE", "DELETE"}) for role in API_ROLES
    },
    "storage.buckets": {
        role: frozenset({"SELECT", "INSERT", "UPDATE", "DELETE"}) for role in API_ROLES
    },
}
RLS_ENABLED: Final = frozenset({"realtime.messages", "storage.objects", "storage.buckets"})

# Column defaults a migration or policy depends on.
COLUMN_DEFAULTS: Final[dict[str, str]] = {"realtime.messages.private": "false"}

# Schemas the API roles may use.
SCHEMA_USAGE: Final = ("auth", "realtime", "storage", "extensions", "public")

# auth.users columns the product reads (migrations and functions).
AUTH_USERS_COLUMNS: Final[dict[str, str]] = {
    "id": "uuid",
    "email": "character varying",
    "deleted_at": "timestamp with time zone",
}

# Role attributes the API relies on.
ROLES: Final[dict[str, dict[str, bool]]] = {
    "anon": {"rolcanlogin": False, "rolinherit": False, "rolbypassrls": False},
    "authenticated": {"rolcanlogin": False, "rolinherit": False, "rolbypassrls": False},
    "service_role": {"rolcanlogin": False, "rolinherit": False, "rolbypassrls": True},
}
