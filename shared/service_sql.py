"""One statement as the service role, committed on its own.

Why not the request's transaction: the dispatcher and the batched housekeeping must commit
each step (a claim, a delivery mark, a batch of deletions) while the run goes on, so that a run
killed midway keeps what it finished and holds no lock or long transaction meanwhile.
"""

from __future__ import annotations

from shared.db import Params, Row, Transaction
from shared.settings import Settings

SERVICE_CLAIMS = {"role": "service_role"}


def run(settings: Settings, sql: str, params: Params = None, path: str = "/") -> list[Row]:
    """Run one statement as the service role in its own transaction (one round trip)."""
    tx = Transaction(settings, SERVICE_CLAIMS, "service_role", "POST", path, {}, True)
    try:
        rows = tx.all(sql, params)
    except BaseException:
        tx.finish(commit=False)
        raise
    tx.finish(commit=True)
    return rows
