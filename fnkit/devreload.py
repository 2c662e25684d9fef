"""`fnkit dev` reloads as dev servers do: a change is served without a restart.

The services (database, Redis bridge, scheduler, webhook deliverer) stay in the `fnkit dev`
process; the functions are served by a worker process that is replaced when a file of
`functions/` or `shared/` changes (a new function included). Python cannot reliably
re-import a package that other modules hold on to, so a fresh process is the only reload
that never serves a mix of old and new code. The listening socket belongs to the parent and
is inherited by each worker, so requests made during a swap wait in the socket's backlog
instead of being refused. A new or changed file of `supabase/migrations/` is applied first
(`fnkit.db.migrate`, which skips what is already recorded), then the worker is replaced.

Changes are found by polling modification times: a few hundred files cost well under a
millisecond a round, and polling needs no dependency and works on every file system.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["POLL_SECONDS", "WATCHED", "Supervisor", "changed", "snapshot"]

WATCHED = (("functions", "*.py"), ("shared", "*.py"), ("supabase/migrations", "*.sql"))
POLL_SECONDS = 0.3


def snapshot(root: Path) -> dict[Path, int]:
    """Every watched file and its modification time (ns)."""
    found: dict[Path, int] = {}
    for folder, pattern in WATCHED:
        for path in (root / folder).rglob(pattern):
            try:
                found[path] = path.stat().st_mtime_ns
            except FileNotFoundError:  # removed while we looked
                continue
    return found


def changed(before: dict[Path, int], after: dict[Path, int]) -> list[Path]:
    """Files added, removed or modified between two snapshots."""
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


class Supervisor:
    """Owns the socket, runs the worker, and replaces it when watched files change."""

    def __init__(
        self,
        root: Path,
        port: int,
        migrate: Callable[[], list[str]],
        log: Callable[[str], None],
    ) -> None:
        self.root = root
        self.migrate = migrate
        self.log = log
        self.socket = socket.create_server(("127.0.0.1", port), backlog=128)
        self.port: int = self.socket.getsockname()[1]
        self.worker: subprocess.Popen[bytes] | None = None

    def start_worker(self) -> None:
        fd = self.socket.fileno()
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "fnkit.devworker", str(fd), str(self.port), str(self.root)],
            pass_fds=(fd,),
            env=os.environ.copy(),
        )

    def stop_worker(self) -> None:
        if self.worker is not None and self.worker.poll() is None:
            self.worker.terminate()
            try:
                self.worker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.worker.kill()
                self.worker.wait()
        self.worker = None

    def run(self) -> None:
        """Serve until interrupted; reload on every change."""
        seen = snapshot(self.root)
        self.start_worker()
        try:
            while True:
                time.sleep(POLL_SECONDS)
                now = snapshot(self.root)
                files = changed(seen, now)
                if not files:
                    continue
                seen = now
                self.reload(files)
        finally:
            self.stop_worker()
            self.socket.close()

    def reload(self, files: list[Path]) -> None:
        names = ", ".join(str(p.relative_to(self.root)) for p in files[:5])
        if any(p.suffix == ".sql" for p in files):
            try:
                for applied in self.migrate():
                    self.log(f"fnkit: applied migration {applied}")
            except Exception as exc:  # a broken migration must not stop the server
                self.log(f"fnkit: migration failed, fix it and save again: {exc}")
                return
        self.log(f"fnkit: reloading ({names} changed)")
        self.stop_worker()
        self.start_worker()
