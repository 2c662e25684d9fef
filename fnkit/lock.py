"""`requirements.lock`: the project's one lock, read by every install path.

`make lock` writes it with uv (`uv pip compile --generate-hashes --universal`), in pip's
requirements format, so installing needs nothing but pip (`pip install -r requirements.lock`
checks every hash). `fnkit bundle` and the bench's runtime virtualenv read it here, so a bundle
pins exactly the releases (and hashes) the tests ran with, whatever else is installed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

LOCK_FILE = "requirements.lock"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")
_HASH = re.compile(r"--hash=(sha256:[0-9a-f]{64})")


class LockError(RuntimeError):
    """The lock is missing, unreadable, or lacks a distribution that is needed."""


@dataclass(frozen=True)
class Locked:
    name: str
    version: str
    hashes: tuple[str, ...]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse(text: str) -> dict[str, Locked]:
    """Canonical name → pinned release and its hashes, from pip's requirements format."""
    entries: dict[str, Locked] = {}
    logical = re.sub(r"\\\n", " ", text)  # join backslash continuations
    for line in logical.splitlines():
        line = line.split(" #", 1)[0].strip()
        found = _PIN.match(line)
        if found is None:
            continue
        name = canonical(found.group(1))
        entries[name] = Locked(name, found.group(2), tuple(_HASH.findall(line)))
    return entries


def read(root: Path) -> dict[str, Locked]:
    path = root / LOCK_FILE
    if not path.is_file():
        raise LockError(f"{path} is missing: run `make lock` to write it")
    return parse(path.read_text(encoding="utf-8"))
