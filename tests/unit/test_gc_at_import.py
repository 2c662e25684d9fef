"""`import shared` loads with the cyclic collector off, freezes what it loaded, and leaves the
collector as it found it (shared/__init__.py says why). Each case runs in a fresh interpreter:
in this one the package is long imported."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.fixtures.server import ROOT

PROBE = """
import gc, json, sys
if sys.argv[1] == "off":
    gc.disable()
collections = []


def counted(phase, info):
    # Only once the package's body runs: compiling its source (a stale .pyc) comes before.
    if phase == "start" and hasattr(sys.modules.get("shared"), "_collecting"):
        collections.append(info["generation"])


gc.callbacks.append(counted)
import shared
after = gc.isenabled()
print(json.dumps({"enabled": after, "collections": len(collections), "frozen": gc.get_freeze_count()}))
"""


def _import_shared(state: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, state],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_import_collects_nothing_freezes_and_turns_the_collector_back_on() -> None:
    found = _import_shared("on")
    assert found["enabled"] is True
    assert found["collections"] == 0
    assert isinstance(found["frozen"], int) and found["frozen"] > 10_000


def test_a_collector_turned_off_before_stays_off() -> None:
    assert _import_shared("off")["enabled"] is False
