"""Where a running `fnkit dev` serves, for the commands run beside it (`fnkit env`).

The dev server may not get the ports it asked for (another one runs), so the addresses it
actually uses are written to `.fnkit/dev.json` at start and removed at exit. A file left by
a server that died is ignored: its process id no longer runs.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["STATE_FILE", "clear_state", "read_state", "write_state"]

STATE_FILE = Path(".fnkit") / "dev.json"


def write_state(root: Path, **addresses: str) -> None:
    path = root / STATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"pid": os.getpid(), **addresses}), encoding="utf-8")
    temporary.replace(path)  # readers never see half a file


def read_state(root: Path) -> dict[str, Any] | None:
    """The running dev server's addresses, or None when none runs."""
    try:
        state: dict[str, Any] = json.loads((root / STATE_FILE).read_text(encoding="utf-8"))
        os.kill(int(state["pid"]), 0)  # raises when that process is gone
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state


def clear_state(root: Path) -> None:
    state = read_state(root)
    if state is not None and state.get("pid") == os.getpid():
        with contextlib.suppress(FileNotFoundError):
            (root / STATE_FILE).unlink()
