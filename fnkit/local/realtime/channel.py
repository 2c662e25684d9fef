"""One joined channel: its join, and the events a client sends on it, as RealtimeChannel does.

Join (`phx_join`): the topic is `realtime:<name>`; the config says broadcast `self`/`ack`,
presence `key`/`enabled`, `private`, and `postgres_changes` bindings. The token is the join's
`access_token` (or `user_token`), else the socket's apikey; it must carry `role` and `exp`. A
private channel needs read access through the policies on `realtime.messages`. The reply lists
the bindings with their ids; then come the `system` "Subscribed to PostgreSQL" message (or its
error) and, with presence enabled, the `presence_state`.

Refusals after the join (an expired or revoked token, a flood) are Realtime's
`shutdown_response`: a `system` message with status error, then `phx_close`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psycopg

from fnkit.local.realtime.auth import ChannelError, Identity, identify
from fnkit.local.realtime.bindings import Binding, BindingError, parse_binding
from fnkit.local.realtime.hub import TopicKey
from fnkit.local.realtime.join import JoinConfig, replay_messages
from fnkit.local.realtime.policies import Policies, can_read, can_write
from fnkit.local.realtime.serializers import BinaryPayload, Message

if TYPE_CHECKING:
    from fnkit.local.realtime.session import Session

__all__ = ["Channel"]

Reply = tuple[str, dict[str, Any]] | None


@dataclass(eq=False)
class Channel:
    session: Session
    topic: str
    join_ref: str | None
    config: JoinConfig
    identity: Identity
    bindings: list[Binding] = field(default_factory=list)
    policies: Policies | None = None
    presence_enabled: bool = False
    presence_key: str = ""
    closed: bool = False
    # When the channel joined: a broadcast the database wrote before it is not sent live (as
    # Realtime's stream would not), only by replay.
    joined_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def name(self) -> str:
        return self.topic.removeprefix("realtime:")

    @property
    def key(self) -> TopicKey:
        return (self.name, self.config.private)

    @property
    def self_broadcast(self) -> bool:
        return self.config.self_broadcast

    def may_read_broadcast(self) -> bool:
        return self.policies is None or self.policies.broadcast_read is True

    def may_read_presence(self) -> bool:
        return self.presence_enabled and (
            self.policies is None or self.policies.presence_read is True
        )

    # ---- pushes -------------------------------------------------------------------------

    def push(self, event: str, payload: dict[str, Any]) -> None:
        self.session.push(Message(self.topic, event, payload, None, self.join_ref))

    def system(self, extension: str, status: str, message: str) -> None:
        self.push("system", {"extension": extension, "status": status, "message": message,
                             "channel": self.name})  # fmt: skip

    def shutdown(self, message: str) -> None:
        """Realtime's shutdown_response: the error, then the channel closes."""
        if self.closed:
            return
        self.system("system", "error", message)
        self.session.close_channel(self)
        self.session.push(Message(self.topic, "phx_close", {}, self.join_ref, self.join_ref))

    # ---- join ---------------------------------------------------------------------------

    def authorize(self) -> None:
        """Read access to a private topic (ChannelError when there is none)."""
        if not self.config.private:
            if self.config.replay is not None:
                raise ChannelError(
                    "UnableToReplayMessages", "Replay is not allowed for public channels"
                )
            self.policies = None
            return
        pool = self.session.services.pool
        try:
            broadcast, presence = can_read(pool, self.identity, self.name)
        except psycopg.Error as exc:
            raise self.unauthorized() from exc
        if not (broadcast or presence) or (self.config.replay is not None and not broadcast):
            raise self.unauthorized()
        self.policies = Policies(broadcast, presence)

    def unauthorized(self) -> ChannelError:
        return ChannelError(
            "Unauthorized",
            f"You do not have permissions to read from this Channel topic: {self.name}",
        )

    def parse_bindings(self) -> str | None:
        """Parse the postgres_changes bindings; the error Realtime would report, if any."""
        self.bindings = []
        for params in self.config.postgres_changes:
            try:
                self.bindings.append(parse_binding(params))
            except BindingError as exc:
                self.bindings = []
                return str(exc)
        return None

    def joined(self, binding_error: str | None) -> None:
        """What follows a successful join reply."""
        feed = self.session.services.feed
        if self.config.postgres_changes:
            if binding_error is not None:
                self.system("postgres_changes", "error", binding_error)
            elif feed is None:
                self.system("postgres_changes", "error", "Postgres Changes are not served here")
            else:
                error = feed.subscribe(self, self.bindings)
                if error is None:
                    self.system("postgres_changes", "ok", "Subscribed to PostgreSQL")
                else:
                    self.system("postgres_changes", "error", error)
        if self.config.replay is not None:
            for body in replay_messages(self.session.services.pool, self.name, self.config.replay):
                self.push("broadcast", body)
        if self.presence_enabled and self.may_read_presence():
            self.push("presence_state", self.session.services.hub.presence.state(self.key))

    # ---- events -------------------------------------------------------------------------

    def handle(self, message: Message) -> Reply:
        event = message.event
        if event == "broadcast":
            return self._broadcast(message.payload)
        if isinstance(message.payload, BinaryPayload):
            return None
        if event == "presence":
            return self._presence(message.payload)
        if event == "access_token":
            self._refresh(message.payload.get("access_token"))
            return None
        return None  # Realtime ignores events it does not know

    def _broadcast(self, payload: dict[str, Any] | BinaryPayload) -> Reply:
        if self.policies is not None:
            if self.policies.broadcast_write is None:
                self.policies.broadcast_write = self._may_write("broadcast")
            if not self.policies.broadcast_write:
                return None
        limits = self.session.services.limits
        if _size(payload) > limits.max_payload_bytes:
            return ("error", {"reason": "payload_size_exceeded"}) if self.config.ack else None
        if isinstance(payload, BinaryPayload):
            payload = BinaryPayload(payload.event, payload.data, payload.json)
        self.session.services.hub.broadcast(self.key, payload, sender=self)
        return ("ok", {}) if self.config.ack else None

    def _presence(self, payload: dict[str, Any]) -> Reply:
        hub = self.session.services.hub
        event = str(payload.get("event", "")).lower()
        if event == "untrack":
            diff = hub.presence.untrack(self.key, id(self))
            if diff is not None:
                hub.presence_diff(self.key, diff)
            return ("ok", {})
        if event != "track":
            return ("error", {})
        body = payload.get("payload", {})
        if not isinstance(body, dict):
            return ("error", {"reason": "Presence track payload must be a map"})
        if self.policies is not None:
            if self.policies.presence_write is None:
                self.policies.presence_write = self._may_write("presence")
            if not self.policies.presence_write:
                return ("error", {})
        if _size(body) > self.session.services.limits.max_payload_bytes:
            self.shutdown("Track message size exceeded")
            return None
        self.presence_enabled = True
        diff = hub.presence.track(self.key, id(self), self.presence_key, body)
        if diff is not None:
            hub.presence_diff(self.key, diff)
        return ("ok", {})

    def _may_write(self, extension: str) -> bool:
        try:
            return can_write(self.session.services.pool, self.identity, self.name,
                                      extension)  # fmt: skip
        except psycopg.Error:
            return False

    def _refresh(self, token: Any) -> None:
        """A new access token: verified, and access re-checked (lost access closes)."""
        if not isinstance(token, str) or token.startswith("sb_") or token == self.identity.token:
            return
        try:
            identity = identify(self.session.services.config, token)
        except ChannelError as exc:
            self.shutdown(exc.message)
            return
        previous, self.identity = self.policies, identity
        try:
            self.authorize()
        except ChannelError as exc:
            self.shutdown(exc.message)
            return
        if previous is not None and self.policies is not None:
            revoked = (previous.broadcast_read and not self.policies.broadcast_read) or (
                previous.presence_read and not self.policies.presence_read
            )
            if revoked:
                self.shutdown(
                    f"You no longer have permission to read from this Channel topic: {self.name}"
                )

    def check_expiry(self, now: float | None = None) -> None:
        """Realtime re-checks tokens on a timer; an expired one closes the channel."""
        now = time.time() if now is None else now
        if not self.closed and self.identity.expires_at <= now:
            self.shutdown(f"Token has expired {int(now - self.identity.expires_at)} seconds ago")


def _size(payload: dict[str, Any] | BinaryPayload) -> int:
    if isinstance(payload, BinaryPayload):
        return len(payload.data)
    import json

    return len(json.dumps(payload, separators=(",", ":")).encode())
