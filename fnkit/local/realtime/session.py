"""One websocket connection: Phoenix's socket, multiplexing channels over it.

The connection's request thread handles its messages in order (joins, leaves, heartbeats on
topic `phoenix`, channel events); frames to the client are queued on its `Link`, written by the
wire loop, so fan-out from other threads never waits and a client that stops reading holds up
nobody. A frame that cannot be decoded is ignored (Phoenix logs it); a message to a topic the
client has not joined gets Phoenix's `unmatched topic` error reply.

Limits, per connection (Realtime has them per tenant, with the same defaults): 100 channels,
100 joins a second (beyond: `ClientJoinRateLimitReached`, and the socket is closed), 100 events
a second on average with bursts of 200 (beyond: the channel closes with "Too many messages per
second").
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from fnkit.local.realtime.auth import ChannelError, Identity, identify
from fnkit.local.realtime.channel import Channel
from fnkit.local.realtime.context import Services
from fnkit.local.realtime.join import join_config, new_presence_key
from fnkit.local.realtime.serializers import FrameError, Message, Serializer
from fnkit.local.realtime.wire import Link

__all__ = ["Session"]

_log = logging.getLogger(__name__)
_NO_TOPIC = "TopicNameRequired: You must provide a topic name"
_JOIN_FLOOD = "ClientJoinRateLimitReached: Too many joins per second"


class _Bucket:
    """A token bucket: `rate` a second on average, bursts up to `burst`."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst, self.tokens, self.at = rate, burst, burst, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Session:
    def __init__(self, link: Link, services: Services, serializer: Serializer, apikey: str) -> None:
        self.link = link
        self.services = services
        self.serializer = serializer
        self.apikey = apikey
        self.channels: dict[str, Channel] = {}
        self._lock = threading.Lock()
        limits = services.limits
        self._joins = _Bucket(limits.max_joins_per_second, limits.max_joins_per_second)
        self._events = _Bucket(limits.max_events_per_second, 2 * limits.max_events_per_second)

    # ---- output -------------------------------------------------------------------------

    def push(self, message: Message, frames: dict[str, str | bytes | None] | None = None) -> None:
        """Queue a message; `frames` caches encodings across a fan-out."""
        vsn = self.serializer.vsn
        if frames is not None and vsn in frames:
            frame = frames[vsn]
        else:
            frame = self.serializer.encode(message)
            if frames is not None:
                frames[vsn] = frame
        if frame is not None:  # None: a binary broadcast a vsn 1.0.0 client cannot receive
            self.link.send(frame)

    # ---- input --------------------------------------------------------------------------

    def run(self) -> None:
        """Handle the client's messages, in order, until the connection ends."""
        idle = self.services.limits.idle_timeout_s
        try:
            while True:
                try:
                    frame = self.link.incoming.get(timeout=idle)
                except queue.Empty:  # Phoenix drops a socket that sent nothing for a minute
                    self.link.close(1000, "idle")
                    try:
                        frame = self.link.incoming.get(timeout=5)
                    except queue.Empty:  # nor does it answer the close
                        self.link.abort()
                        break
                if frame is None:
                    break
                self._handle_frame(frame)
        finally:
            for channel in list(self.channels.values()):
                self.close_channel(channel)

    def _handle_frame(self, frame: str | bytes) -> None:
        try:
            message = self.serializer.decode(frame)
        except FrameError as exc:
            _log.info("ignoring an undecodable realtime frame: %s", exc)
            return
        try:
            self._handle(message)
        except Exception:  # one bad message must not end the connection
            _log.exception("realtime: error handling %s on %s", message.event, message.topic)

    def _reply(self, message: Message, status: str, response: dict[str, Any]) -> None:
        self.push(Message(message.topic, "phx_reply", {"status": status, "response": response},
                          message.ref, message.join_ref))  # fmt: skip

    def _handle(self, message: Message) -> None:
        if message.topic == "phoenix" and message.event == "heartbeat":
            self._reply(message, "ok", {})
            return
        if message.event == "phx_join":
            self._join(message)
            return
        channel = self.channels.get(message.topic)
        if channel is None:
            self._reply(message, "error", {"reason": "unmatched topic"})
            return
        if message.event == "phx_leave":
            self.close_channel(channel)
            self._reply(message, "ok", {})
            return
        if not self._events.take():
            channel.shutdown("Too many messages per second")
            return
        reply = channel.handle(message)
        if reply is not None:
            self._reply(message, *reply)

    def _join(self, message: Message) -> None:
        topic, payload = message.topic, message.payload
        if not topic.startswith("realtime:") or not isinstance(payload, dict):
            self._reply(message, "error", {"reason": "unmatched topic"})
            return
        if topic == "realtime:":
            self._reply(message, "error", {"reason": _NO_TOPIC})
            return
        old = self.channels.get(topic)
        if old is not None:  # Phoenix closes the old channel of a duplicate join
            self.close_channel(old)
        try:
            self._join_new(message, topic, payload)
        finally:
            if old is not None:  # pushed after the reply, as Phoenix does
                self.push(Message(topic, "phx_close", {}, old.join_ref, old.join_ref))

    def _join_new(self, message: Message, topic: str, payload: dict[str, Any]) -> None:
        if not self._joins.take():
            self._reply(message, "error", {"reason": _JOIN_FLOOD})
            self.link.close(1008, "too many joins")
            return
        if len(self.channels) >= self.services.limits.max_channels_per_client:
            self._reply(message, "error", {"reason": "ChannelRateLimitReached: Too many channels"})
            return
        try:
            config = join_config(payload)
            identity = self._identity(payload)
            channel = Channel(self, topic, message.join_ref or message.ref, config, identity)
            channel.authorize()
        except ChannelError as exc:
            self._reply(message, "error", {"reason": exc.reason})
            return
        channel.presence_key = new_presence_key(config)
        channel.presence_enabled = config.presence_enabled
        binding_error = channel.parse_bindings()
        with self._lock:
            self.channels[topic] = channel
        self.services.hub.add(channel)
        changes = [b.reply() for b in channel.bindings]
        self._reply(message, "ok", {"postgres_changes": changes})
        channel.joined(binding_error)

    def _identity(self, payload: dict[str, Any]) -> Identity:
        token = payload.get("access_token") or payload.get("user_token")
        if not isinstance(token, str) or token.startswith("sb_"):
            token = self.apikey
        return identify(self.services.config, token)

    def close_channel(self, channel: Channel) -> None:
        """Forget a channel: off its topic, its presence gone, its subscriptions dropped."""
        if channel.closed:
            return
        channel.closed = True
        with self._lock:
            if self.channels.get(channel.topic) is channel:
                del self.channels[channel.topic]
        services = self.services
        services.hub.remove(channel)
        diff = services.hub.presence.untrack(channel.key, id(channel))
        if diff is not None:
            services.hub.presence_diff(channel.key, diff)
        if services.feed is not None:
            services.feed.unsubscribe(channel)
