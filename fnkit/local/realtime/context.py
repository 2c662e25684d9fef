"""What every part of the local Realtime shares: settings, limits, the database and the hub.

The limits are Realtime's defaults for a tenant (`TENANT_MAX_*` in its runtime config), applied
per connection here since a local server has one tenant and few clients.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from psycopg_pool import ConnectionPool

from fnkit.local.config import LocalConfig
from fnkit.local.realtime.hub import Hub

if TYPE_CHECKING:
    from fnkit.local.realtime.changes import ChangeFeed

__all__ = ["Limits", "Services"]


@dataclass(frozen=True)
class Limits:
    """Realtime's per-tenant defaults, here per connection."""

    max_channels_per_client: int = 100
    max_joins_per_second: int = 100
    max_events_per_second: int = 100
    max_payload_bytes: int = 3000 * 1024
    """`max_payload_size_in_kb` (3000): larger broadcasts and presences are refused."""
    max_frame_bytes: int = 3100 * 1024
    """A websocket message above this closes the connection (1009), as Phoenix's max frame."""
    idle_timeout_s: float = 60.0
    """Phoenix's websocket timeout: a client that sends nothing (not even heartbeats, which
    realtime-py sends every 25 s) for this long is disconnected."""
    max_buffer_bytes: int = 16 * 1024 * 1024
    """Bytes waiting for a client that does not read; beyond this the connection is dropped."""


@dataclass
class Services:
    config: LocalConfig
    pool: ConnectionPool[Any]
    hub: Hub = field(default_factory=Hub)
    limits: Limits = field(default_factory=Limits)
    feed: ChangeFeed | None = None
