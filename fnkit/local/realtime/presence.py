"""Presence as Phoenix tracks it: who is on a topic, under which key, with which metas.

Each tracked channel contributes one meta to its key (`{phx_ref, ...payload}`); a key with
several channels has several metas. Clients get the whole state once (`presence_state`,
`{key: {"metas": [...]}}`) and then diffs (`presence_diff`, `{"joins": ..., "leaves": ...}`);
re-tracking replaces a meta: the diff joins the new one (with `phx_ref_prev`) and leaves the old.
"""

from __future__ import annotations

import base64
import itertools
import os
import threading
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PresenceTable"]

Diff = dict[str, dict[str, dict[str, list[dict[str, Any]]]]]

_refs = itertools.count(1)
_node = base64.urlsafe_b64encode(os.urandom(6)).decode()


def _new_ref() -> str:
    """A unique phx_ref, shaped like Phoenix's (short base64 text)."""
    return f"{_node}{next(_refs):x}"


@dataclass
class _Entry:
    key: str
    meta: dict[str, Any]


@dataclass
class PresenceTable:
    """The presences of every topic: (topic, owner) → entry, owner being a channel's id."""

    _entries: dict[tuple[Any, int], _Entry] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def track(self, topic: Any, owner: int, key: str, payload: dict[str, Any]) -> Diff | None:
        """Track (or update) owner's presence; the diff to broadcast, None when unchanged."""
        with self._lock:
            old = self._entries.get((topic, owner))
            if old is not None and old.key == key and _payload(old.meta) == payload:
                return None
            meta = {**payload, "phx_ref": _new_ref()}
            leaves: dict[str, dict[str, list[dict[str, Any]]]] = {}
            if old is not None:
                meta["phx_ref_prev"] = old.meta["phx_ref"]
                leaves = {old.key: {"metas": [old.meta]}}
            self._entries[(topic, owner)] = _Entry(key, meta)
            return {"joins": {key: {"metas": [meta]}}, "leaves": leaves}

    def untrack(self, topic: Any, owner: int) -> Diff | None:
        with self._lock:
            old = self._entries.pop((topic, owner), None)
        if old is None:
            return None
        return {"joins": {}, "leaves": {old.key: {"metas": [old.meta]}}}

    def state(self, topic: Any) -> dict[str, dict[str, list[dict[str, Any]]]]:
        """The `presence_state` payload of `topic`."""
        result: dict[str, dict[str, list[dict[str, Any]]]] = {}
        with self._lock:
            for (entry_topic, _), entry in self._entries.items():
                if entry_topic == topic:
                    metas = result.setdefault(entry.key, {"metas": []})["metas"]
                    metas.append({k: v for k, v in entry.meta.items() if k != "phx_ref_prev"})
        return result


def _payload(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if k not in ("phx_ref", "phx_ref_prev")}
