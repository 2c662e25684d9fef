"""Phoenix's wire formats as Supabase Realtime speaks them: vsn 1.0.0 and vsn 2.0.0.

- 1.0.0 (realtime-py): every frame is a JSON object `{topic, event, payload, ref}`; the server
  writes only those four fields (Phoenix's V1 serializer drops `join_ref`).
- 2.0.0 (realtime-js): text frames are JSON arrays `[join_ref, ref, topic, event, payload]`;
  binary frames carry broadcasts whose payload is raw bytes (Realtime's V2Serializer: kind 3
  "user broadcast push" from the client, kind 4 "user broadcast" to it).

A frame that is neither raises `FrameError`; the session answers it without dropping the
connection, as Phoenix logs and ignores a message it cannot decode.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "V1",
    "V2",
    "BinaryPayload",
    "FrameError",
    "Message",
    "Serializer",
    "serializer_for",
]

V1 = "1.0.0"
V2 = "2.0.0"

_PUSH = 0
_USER_BROADCAST_PUSH = 3
_USER_BROADCAST = 4


class FrameError(ValueError):
    """The frame is not a Phoenix message in this serializer's format."""


@dataclass(frozen=True)
class BinaryPayload:
    """A broadcast whose payload is bytes (vsn 2.0.0 only), or JSON text kept undecoded."""

    event: str
    data: bytes
    json: bool = False
    meta: dict[str, Any] | None = None


@dataclass
class Message:
    """One Phoenix message, either direction."""

    topic: str
    event: str
    payload: dict[str, Any] | BinaryPayload = field(default_factory=dict)
    ref: str | None = None
    join_ref: str | None = None


class Serializer:
    """Encodes and decodes one connection's frames; `vsn` names the format."""

    vsn = V1

    def decode(self, frame: str | bytes) -> Message:
        if isinstance(frame, bytes):
            raise FrameError("binary frames need vsn 2.0.0")
        data = _loads(frame)
        if not isinstance(data, dict):
            raise FrameError("expected a JSON object")
        return _message(data.get("join_ref"), data.get("ref"), data.get("topic"),
                        data.get("event"), data.get("payload"))  # fmt: skip

    def encode(self, message: Message) -> str | bytes | None:
        """The frame, or None when this format cannot carry it (binary payloads in V1)."""
        if isinstance(message.payload, BinaryPayload):
            if not message.payload.json:
                return None
            payload = _json_broadcast(message.payload)
            return _dumps({"topic": message.topic, "event": message.event,
                           "payload": payload, "ref": message.ref})  # fmt: skip
        return _dumps({"topic": message.topic, "event": message.event,
                       "payload": message.payload, "ref": message.ref})  # fmt: skip


class SerializerV2(Serializer):
    vsn = V2

    def decode(self, frame: str | bytes) -> Message:
        if isinstance(frame, bytes):
            return _decode_binary(frame)
        data = _loads(frame)
        if not isinstance(data, list) or len(data) < 5:
            raise FrameError("expected a V2 array")
        return _message(data[0], data[1], data[2], data[3], data[4])

    def encode(self, message: Message) -> str | bytes | None:
        payload = message.payload
        if isinstance(payload, BinaryPayload):
            meta = _dumps(payload.meta).encode() if payload.meta else b""
            topic, event = message.topic.encode(), payload.event.encode()
            head = struct.pack("!5B", _USER_BROADCAST, len(topic), len(event), len(meta),
                               1 if payload.json else 0)  # fmt: skip
            return head + topic + event + meta + payload.data
        return _dumps([message.join_ref, message.ref, message.topic, message.event, payload])


V1_SERIALIZER = Serializer()
V2_SERIALIZER = SerializerV2()


def serializer_for(vsn: str | None) -> Serializer | None:
    """The serializer a client asked for with `?vsn=` (1.0.0 when absent), None if unknown."""
    if vsn in (None, "", V1):
        return V1_SERIALIZER
    if vsn == V2:
        return V2_SERIALIZER
    return None


def _loads(frame: str) -> Any:
    try:
        return json.loads(frame)
    except ValueError as exc:
        raise FrameError("not JSON") from exc


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _json_broadcast(payload: BinaryPayload) -> dict[str, Any]:
    """A JSON-encoded binary broadcast as V1 carries it: `{event, payload, type, meta?}`."""
    body: dict[str, Any] = {"event": payload.event, "payload": json.loads(payload.data),
                            "type": "broadcast"}  # fmt: skip
    if payload.meta:
        body["meta"] = payload.meta
    return body


def _opt_str(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise FrameError(f"{name} must be a string")


def _message(join_ref: Any, ref: Any, topic: Any, event: Any, payload: Any) -> Message:
    if not isinstance(topic, str) or not isinstance(event, str):
        raise FrameError("topic and event must be strings")
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise FrameError("payload must be an object")
    return Message(topic, event, payload, _opt_str(ref, "ref"), _opt_str(join_ref, "join_ref"))


def _decode_binary(frame: bytes) -> Message:
    """Kind 0 (push with a binary payload) or kind 3 (a client's binary broadcast)."""
    try:
        kind = frame[0]
        if kind == _USER_BROADCAST_PUSH:
            sizes = struct.unpack_from("!6B", frame, 1)
            at = 7
            parts = []
            for size in sizes[:5]:
                parts.append(frame[at : at + size])
                at += size
            if at > len(frame):
                raise FrameError("truncated frame")
            join_ref, ref, topic, event, meta = (p.decode() for p in parts)
            data = frame[at:]
            is_json = sizes[5] == 1
            body = BinaryPayload(event, data, json=is_json, meta=json.loads(meta) if meta else None)
            return Message(topic, "broadcast", body, ref or None, join_ref or None)
        if kind == _PUSH:
            sizes = struct.unpack_from("!4B", frame, 1)
            at = 5
            parts = []
            for size in sizes:
                parts.append(frame[at : at + size])
                at += size
            join_ref, ref, topic, event = (p.decode() for p in parts)
            return Message(topic, event, BinaryPayload(event, frame[at:]), ref or None,
                           join_ref or None)  # fmt: skip
    except (IndexError, struct.error, UnicodeDecodeError, ValueError) as exc:
        raise FrameError("malformed binary frame") from exc
    raise FrameError(f"unknown binary frame kind {kind}")
