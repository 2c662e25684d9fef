"""Who listens where: the channels joined on every topic, and fan-out to them.

Public and private channels of the same name are different topics, as on Realtime (a public
broadcast never reaches a private channel's members), so topics are keyed by (name, private).
Fan-out encodes a message once per wire format and queues the frame on each subscriber's
connection: a slow or dead client never holds up the others.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fnkit.local.realtime.presence import PresenceTable
from fnkit.local.realtime.serializers import BinaryPayload, Message

if TYPE_CHECKING:
    from fnkit.local.realtime.channel import Channel

__all__ = ["Hub", "TopicKey"]

TopicKey = tuple[str, bool]


class Hub:
    """Every joined channel by topic, plus the presences tracked on them."""

    def __init__(self) -> None:
        self._topics: dict[TopicKey, set[Channel]] = {}
        self._lock = threading.Lock()
        self.presence = PresenceTable()
        self.joined = threading.Event()
        """Set on every join: pollers waiting idle wake up for their first listener."""

    def add(self, channel: Channel) -> None:
        with self._lock:
            self._topics.setdefault(channel.key, set()).add(channel)
        self.joined.set()

    def remove(self, channel: Channel) -> None:
        with self._lock:
            members = self._topics.get(channel.key)
            if members is not None:
                members.discard(channel)
                if not members:
                    del self._topics[channel.key]

    def members(self, key: TopicKey) -> list[Channel]:
        with self._lock:
            return list(self._topics.get(key, ()))

    def empty(self) -> bool:
        with self._lock:
            return not self._topics

    def all_channels(self) -> list[Channel]:
        with self._lock:
            return [channel for members in self._topics.values() for channel in members]

    def broadcast(
        self,
        key: TopicKey,
        payload: dict[str, Any] | BinaryPayload,
        sender: Channel | None = None,
        written_at: datetime | None = None,
    ) -> int:
        """Send a broadcast to the topic's readers (the sender only with `self`; with
        `written_at`, a database message, only channels joined before it); how many."""
        return self._fan_out(
            key,
            "broadcast",
            payload,
            lambda ch: (
                (ch is not sender or ch.self_broadcast)
                and (written_at is None or ch.joined_at <= written_at)
                and ch.may_read_broadcast()
            ),
        )

    def presence_diff(self, key: TopicKey, diff: dict[str, Any]) -> int:
        return self._fan_out(key, "presence_diff", diff, lambda ch: ch.may_read_presence())

    def _fan_out(
        self,
        key: TopicKey,
        event: str,
        payload: dict[str, Any] | BinaryPayload,
        wanted: Callable[[Channel], bool],
    ) -> int:
        message = Message(f"realtime:{key[0]}", event, payload)
        frames: dict[str, str | bytes | None] = {}
        sent = 0
        for channel in self.members(key):
            if wanted(channel):
                channel.session.push(message, frames)
                sent += 1
        return sent
