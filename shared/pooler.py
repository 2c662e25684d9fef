"""Whether `DATABASE_URL` keeps one server session per client connection: prepared statements.

A server-side prepared statement lives in one Postgres session. Supavisor's transaction mode
(port 6543 on `*.pooler.supabase.com`) and pgbouncer in transaction mode hand each transaction
to whichever server connection is free, so a statement prepared in one transaction is missing
(or is another one) in the next: there they must never be used. A direct connection
(`db.<ref>.supabase.co:5432`) or Supavisor's session mode (port 5432 on the pooler host) keeps
the session, and there they save Postgres parsing and planning on every query (about 40% of
its CPU for the task list page, measured by `python -m fnkit.bench.alternatives`).

`DB_PREPARED_STATEMENTS` (`auto` by default, `on`, `off`) decides, with `auto` the safe
default: on only when the URL itself shows a session (a Supabase direct host, or the Supabase
pooler on 5432), off for everything else, since a pgbouncer can listen on any address. `on`
for a URL that shows transaction mode (the Supabase pooler on 6543, `pgbouncer=true`) is
refused at start. `pgbouncer=true`, the flag Supabase's connection strings carry for
transaction mode, is not a libpq parameter: `conninfo` leaves it out of what psycopg receives.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

Mode = Literal["session", "transaction", "unknown"]
SETTING_VALUES = ("auto", "on", "off")
_POOLER_SUFFIX = ".pooler.supabase.com"
_DIRECT_SUFFIX = ".supabase.co"
_TRANSACTION_PORT = 6543


def _flagged(query: str) -> bool:
    return any(
        name.lower() == "pgbouncer" and value.lower() in ("true", "1", "yes", "on")
        for name, value in parse_qsl(query, keep_blank_values=True)
    )


def connection_mode(url: str) -> Mode:
    """What the URL says about its server: a session, a transaction-mode pooler, or unknown."""
    parts = urlsplit(url)
    if _flagged(parts.query):
        return "transaction"
    host = (parts.hostname or "").lower()
    try:
        port = parts.port or 5432
    except ValueError:
        return "unknown"
    supabase = host.endswith(_POOLER_SUFFIX) or (
        host.startswith("db.") and host.endswith(_DIRECT_SUFFIX)
    )
    if not supabase:
        return "unknown"
    return "transaction" if port == _TRANSACTION_PORT else "session"


def prepared_statements(url: str, setting: str) -> bool:
    """Use server-side prepared statements? Raises ValueError for `on` in transaction mode."""
    mode = connection_mode(url)
    if setting == "off":
        return False
    if setting == "on":
        if mode == "transaction":
            raise ValueError(
                "setting DB_PREPARED_STATEMENTS=on, but DATABASE_URL is a transaction-mode"
                " pooler (port 6543 or pgbouncer=true), which cannot keep prepared statements"
            )
        return True
    if setting == "auto":
        return mode == "session"
    raise ValueError(f"setting DB_PREPARED_STATEMENTS must be auto, on or off, got {setting!r}")


def conninfo(url: str) -> str:
    """The URL as libpq takes it: without `pgbouncer=...`, which libpq would refuse."""
    parts = urlsplit(url)
    if "pgbouncer" not in parts.query.lower():
        return url
    kept = [  # the other parameters byte for byte, as the URL wrote them
        piece
        for piece in parts.query.split("&")
        if piece and unquote(piece.split("=", 1)[0]).lower() != "pgbouncer"
    ]
    return urlunsplit(parts._replace(query="&".join(kept)))
