"""An embedded PostgreSQL 16 for dev and tests when no server is configured.

`pgserver` ships Postgres binaries in a wheel, so `make dev` and `make test` work on a fresh
clone without installing a server. It listens on a Unix socket only (no port to collide with)
and keeps its data under the git-ignored `.fnkit/pgdata` of the repository. Like the database
of `supabase start`, the server keeps running after the command that started it (until
`stop_embedded()`), and every later command re-uses the server running for that folder.

Running as root: Postgres refuses to run as root, so pgserver 0.1.4 creates a system user
`pgserver` (`useradd`), chowns the data folder to it, adds o+rx to every parent folder of the
data folder and to its own binaries, and runs initdb/pg_ctl as that user. As a normal user it
runs as that user. `pgserver` is imported lazily: it is a dev dependency only.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import warnings
from pathlib import Path
from typing import Any

__all__ = ["default_data_dir", "start_embedded", "stop_embedded"]

_log = logging.getLogger(__name__)

DATA_SUBDIR = Path(".fnkit") / "pgdata"


def default_data_dir(root: Path | None = None) -> Path:
    """Where the embedded cluster lives: `<root>/.fnkit/pgdata` (git-ignored)."""
    return (root if root is not None else Path.cwd()) / DATA_SUBDIR


def start_embedded(
    data_dir: Path | None = None,
    *,
    root: Path | None = None,
    keep_running: bool = True,
    logical: bool = True,
) -> str:
    """Start (or re-use) the embedded server for `data_dir` and return its libpq URL.

    The URL names the `postgres` database, user `postgres` (trust auth), and the socket folder
    in `host=`, e.g. `postgresql://postgres:@/postgres?host=/repo/.fnkit/pgdata`. By default
    the server outlives this process, like `supabase start`'s database, so `fnkit db url`
    prints something usable and the next command starts instantly; `stop_embedded()` stops
    it. With keep_running=False it stops when the last process that asked for it exits.

    With `logical` (the default) the server runs with `wal_level=logical`, as Supabase's
    database does, so the local Realtime reads Postgres Changes from it: a server that runs
    without it is switched (`alter system`) and restarted once.
    """
    target = _data_dir(data_dir, root)
    target.parent.mkdir(parents=True, exist_ok=True)
    _clear_stale_pidfile(target)
    pgserver = _import_pgserver()
    cleanup = None if keep_running else "stop"
    url: str = pgserver.get_server(target, cleanup_mode=cleanup).get_uri()
    if logical and not _switch_to_logical(url):
        stop_embedded(target)
        url = pgserver.get_server(target, cleanup_mode=cleanup).get_uri()
    _log.info("embedded postgres for %s at %s", target, url)
    return url


def _switch_to_logical(url: str) -> bool:
    """True when the server already decodes logically; else ask for it at the next start."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("show wal_level").fetchone()
        if row is not None and row[0] == "logical":
            return True
        conn.execute("alter system set wal_level = logical")
    return False


def stop_embedded(data_dir: Path | None = None, *, root: Path | None = None) -> bool:
    """Stop the server of `data_dir` (fast shutdown), whoever started it; False if none ran.

    pgserver's own stop-at-exit bookkeeping (a list of client pids in the data folder) is
    reset too, so a stale entry cannot keep a later server alive forever.
    """
    target = _data_dir(data_dir, root)
    pgserver = _import_pgserver()
    server = pgserver.PostgresServer._instances.pop(target, None)
    if server is not None:
        atexit.unregister(server._cleanup)  # it would try to stop the server a second time
    with pgserver.PostgresServer._lock:  # the lock pgserver holds while starting servers
        (target / ".handle_pids.json").unlink(missing_ok=True)
        _clear_stale_pidfile(target)
        if not (target / "postmaster.pid").exists():
            return False
        user = "pgserver" if os.geteuid() == 0 else None  # pg_ctl refuses to run as root
        pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=target, user=user, timeout=30)
    return True


def _data_dir(data_dir: Path | None, root: Path | None) -> Path:
    """Absolute data folder: pgserver keys its servers by the resolved path."""
    return (data_dir if data_dir is not None else default_data_dir(root)).resolve()


def _import_pgserver() -> Any:
    """Import pgserver lazily, silencing its import-time warning about XDG_RUNTIME_DIR.

    pgserver computes its lock-file folder at import; without XDG_RUNTIME_DIR (root, CI,
    containers) platformdirs warns and falls back to /tmp/runtime-<uid>, which works.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
    return pgserver


def _clear_stale_pidfile(target: Path) -> None:
    """Remove a postmaster.pid whose process is gone or a zombie.

    After a crash (kill -9, OOM) the pid file stays. Where nothing reaps orphans (containers
    whose PID 1 is not an init), the dead postmaster lingers as a zombie: pgserver and
    Postgres both take it for a live server and would never start a new one.
    """
    import psutil

    pidfile = target / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return
    try:
        alive = psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        alive = False
    if not alive:
        _log.warning("removing stale %s (postmaster %d is gone)", pidfile, pid)
        with contextlib.suppress(FileNotFoundError):
            pidfile.unlink()
