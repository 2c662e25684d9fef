"""What DATABASE_URL says about its server, and the DB_PREPARED_STATEMENTS decision."""

from __future__ import annotations

import pytest
from psycopg.conninfo import conninfo_to_dict

from shared.pooler import connection_mode, conninfo, prepared_statements

REF = "abcdefghijklmnopqrst"
POOLER = "aws-0-eu-central-1.pooler.supabase.com"


@pytest.mark.parametrize(
    ("url", "mode"),
    [
        (f"postgresql://postgres.{REF}:pw@{POOLER}:6543/postgres", "transaction"),
        (f"postgresql://postgres.{REF}:pw@{POOLER}:5432/postgres", "session"),
        (f"postgresql://postgres.{REF}:pw@{POOLER}/postgres", "session"),  # 5432 by default
        (f"postgresql://postgres:pw@db.{REF}.supabase.co:5432/postgres", "session"),
        (f"postgresql://postgres:pw@db.{REF}.supabase.co:6543/postgres", "transaction"),
        (f"postgresql://postgres:pw@DB.{REF}.SUPABASE.CO/postgres", "session"),
        (
            f"postgresql://postgres:pw@db.{REF}.supabase.co:5432/postgres?pgbouncer=true",
            "transaction",
        ),
        ("postgresql://postgres@127.0.0.1:5432/test?pgbouncer=true", "transaction"),
        ("postgresql://postgres@127.0.0.1:5432/test?pgbouncer=false", "unknown"),
        ("postgresql://postgres@127.0.0.1:5432/test", "unknown"),  # a pgbouncer could listen
        ("postgresql://postgres@127.0.0.1:6432/test", "unknown"),
        ("postgresql://u@example.supabase.co.evil.test:5432/x", "unknown"),
        ("postgresql://u@pooler.supabase.com.evil.test:5432/x", "unknown"),
    ],
)
def test_connection_mode(url: str, mode: str) -> None:
    assert connection_mode(url) == mode


def test_auto_is_on_only_where_the_url_shows_a_session() -> None:
    assert prepared_statements(f"postgresql://p@{POOLER}:5432/postgres", "auto") is True
    assert prepared_statements(f"postgresql://p@db.{REF}.supabase.co/postgres", "auto") is True
    assert prepared_statements(f"postgresql://p@{POOLER}:6543/postgres", "auto") is False
    assert prepared_statements("postgresql://p@127.0.0.1:5432/test", "auto") is False


def test_on_and_off() -> None:
    assert prepared_statements("postgresql://p@127.0.0.1:5432/test", "on") is True
    assert prepared_statements(f"postgresql://p@{POOLER}:5432/postgres", "off") is False
    assert prepared_statements(f"postgresql://p@{POOLER}:6543/postgres", "off") is False
    with pytest.raises(ValueError, match="transaction-mode"):
        prepared_statements(f"postgresql://p@{POOLER}:6543/postgres", "on")
    with pytest.raises(ValueError, match="transaction-mode"):
        prepared_statements("postgresql://p@127.0.0.1/test?pgbouncer=true", "on")
    with pytest.raises(ValueError, match="auto, on or off"):
        prepared_statements("postgresql://p@127.0.0.1/test", "yes")


def test_conninfo_leaves_out_only_the_pgbouncer_flag() -> None:
    url = "postgresql://u:p%40ss@h:6543/db?sslmode=require&pgbouncer=true&application_name=a%20b"
    assert conninfo_to_dict(conninfo(url)) == {
        "user": "u",
        "password": "p@ss",
        "host": "h",
        "port": "6543",
        "dbname": "db",
        "sslmode": "require",
        "application_name": "a b",
    }
    plain = "postgresql://u@h:5432/db?sslmode=require"
    assert conninfo(plain) == plain
