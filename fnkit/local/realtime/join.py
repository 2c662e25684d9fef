"""A `phx_join`'s config, read as Realtime's Join payload schema reads it, and replay.

`config.broadcast` (`self`, `ack`, `replay`), `config.presence` (`key`, `enabled`),
`config.private` and `config.postgres_changes`; booleans are Realtime's FlexibleBoolean ("true",
1, ...). Shapes it cannot parse fall back to the defaults (Realtime logs InvalidJoinPayload and
joins anyway).

Replay (`broadcast.replay = {since: <unix ms>, limit: <n>}`, private channels only): the topic's
latest broadcast messages from `realtime.messages` inserted since then, at most 25, oldest first,
sent after the join reply with `meta: {replayed: true, id}`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg_pool import ConnectionPool

from fnkit.local.realtime.auth import ChannelError

__all__ = ["JoinConfig", "Replay", "join_config", "new_presence_key", "replay_messages"]

REPLAY_LIMIT = 25


@dataclass(frozen=True)
class Replay:
    since: datetime
    limit: int


@dataclass(frozen=True)
class JoinConfig:
    self_broadcast: bool = False
    ack: bool = False
    presence_key: str = ""
    presence_enabled: bool = False
    private: bool = False
    postgres_changes: tuple[Any, ...] = ()
    replay: Replay | None = None


def _flag(value: Any) -> bool:
    """Realtime's FlexibleBoolean: true, "true", 1 and friends."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "t", "yes", "on")
    return value is True or value == 1


def _section(config: dict[str, Any], name: str) -> dict[str, Any]:
    value = config.get(name)
    return value if isinstance(value, dict) else {}


def join_config(payload: dict[str, Any]) -> JoinConfig:
    """The join's config; shapes Realtime cannot parse fall back to its defaults."""
    config = payload.get("config")
    if not isinstance(config, dict):
        return JoinConfig()
    broadcast = _section(config, "broadcast")
    presence = _section(config, "presence")
    changes = config.get("postgres_changes")
    key = presence.get("key")
    return JoinConfig(
        self_broadcast=_flag(broadcast.get("self")),
        ack=_flag(broadcast.get("ack")),
        presence_key=key if isinstance(key, str) else "" if key is None else str(key),
        presence_enabled=_flag(presence.get("enabled")),
        private=_flag(config.get("private")),
        replay=_replay(broadcast),
        postgres_changes=tuple(c for c in changes if c is not None)
        if isinstance(changes, list)
        else (),
    )


def new_presence_key(config: JoinConfig) -> str:
    """The join's presence key, or a fresh one (Realtime's UUID v1) when it gives none."""
    return config.presence_key or str(uuid.uuid1())


def _replay(broadcast: dict[str, Any]) -> Replay | None:
    params = broadcast.get("replay")
    if params is None:
        return None
    since = params.get("since") if isinstance(params, dict) else None
    limit = params.get("limit", REPLAY_LIMIT) if isinstance(params, dict) else None
    if not isinstance(since, int) or not isinstance(limit, int) or isinstance(since, bool):
        raise ChannelError("UnableToReplayMessages", "Replay params are not valid")
    try:
        moment = datetime.fromtimestamp(since / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ChannelError("UnableToReplayMessages", "Replay params are not valid") from exc
    return Replay(moment, max(1, min(limit, REPLAY_LIMIT)))


def replay_messages(pool: ConnectionPool[Any], topic: str, replay: Replay) -> list[dict[str, Any]]:
    """The broadcasts to replay on a private topic, oldest first."""
    with pool.connection() as conn:
        rows = conn.execute(
            "select id, event, payload from realtime.messages"
            " where topic = %s and private and extension = 'broadcast' and payload is not null"
            " and inserted_at >= %s order by inserted_at desc limit %s",
            (topic, replay.since, replay.limit),
        ).fetchall()
    return [
        {"event": event, "payload": payload, "type": "broadcast",
         "meta": {"replayed": True, "id": str(id_)}}
        for id_, event, payload in reversed(rows)
    ]  # fmt: skip
