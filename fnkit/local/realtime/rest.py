"""Broadcast over HTTP, as Realtime's REST API takes it.

- `POST /api/broadcast`: `{"messages": [{topic, event, payload, private?}]}`, a batch.
- `POST /api/broadcast/<topic>/events/<event>` (`?private=true`): one message, its body the
  payload (JSON, or bytes as `application/octet-stream`, which only vsn 2.0.0 clients receive).

The `apikey` header must be the anon or service role key; the caller is the `Authorization`
bearer token (else the apikey). Messages to public topics go straight out; those to private
topics go out only when the caller may write there (the INSERT policy check on
`realtime.messages`), silently dropped otherwise, as Realtime does. 202 with no body is success.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from werkzeug.wrappers import Request, Response

from fnkit.local.realtime import policies
from fnkit.local.realtime.auth import ChannelError, Identity, check_apikey, identify
from fnkit.local.realtime.context import Services
from fnkit.local.realtime.serializers import BinaryPayload

__all__ = ["handle_broadcast"]


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


def _caller(services: Services, request: Request) -> Identity | Response:
    apikey = request.headers.get("apikey") or request.args.get("apikey")
    problem = check_apikey(services.config, apikey)
    if problem is not None:
        return _json(401, {"message": problem})
    assert apikey is not None
    bearer = request.headers.get("Authorization", "")
    token = bearer[7:].strip() if bearer.lower().startswith("bearer ") else apikey
    try:
        return identify(services.config, token)
    except ChannelError as exc:
        return _json(401, {"message": exc.message})


def handle_broadcast(services: Services, request: Request, path: str) -> Response:
    if request.method != "POST":
        return _json(405, {"message": "Method Not Allowed"})
    caller = _caller(services, request)
    if isinstance(caller, Response):
        return caller
    if len(request.get_data(cache=True)) > services.limits.max_payload_bytes:
        return _json(413, {"message": "Payload too large"})
    parts = path.strip("/").split("/")
    if parts == ["api", "broadcast"]:
        return _batch(services, request, caller)
    if len(parts) == 5 and parts[:2] == ["api", "broadcast"] and parts[3] == "events":
        return _single(services, request, caller, unquote(parts[2]), unquote(parts[4]))
    return _json(404, {"message": "Not Found"})


def _batch(services: Services, request: Request, caller: Identity) -> Response:
    body = request.get_json(silent=True)
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list) or not messages:
        return _json(422, {"errors": {"messages": ["can't be blank"]}})
    errors: list[dict[str, list[str]]] = []
    for message in messages:
        error: dict[str, list[str]] = {}
        if not isinstance(message, dict):
            errors.append({"message": ["is invalid"]})
            continue
        for name in ("topic", "event", "payload"):
            if message.get(name) is None:
                error[name] = ["can't be blank"]
        if not isinstance(message.get("payload", {}), dict):
            error["payload"] = ["is invalid"]
        errors.append(error)
    if any(errors):
        return _json(422, {"errors": {"messages": errors}})
    allowed: dict[str, bool] = {}
    for message in messages:
        private = message.get("private") is True
        topic = str(message["topic"])
        if private:
            if topic not in allowed:
                allowed[topic] = _may_write(services, caller, topic)
            if not allowed[topic]:
                continue
        payload = {"payload": message["payload"], "event": str(message["event"]),
                   "type": "broadcast"}  # fmt: skip
        if message.get("id") is not None:
            payload["meta"] = {"id": str(message["id"])}
        services.hub.broadcast((topic, private), payload)
    return Response(status=202)


def _single(
    services: Services, request: Request, caller: Identity, topic: str, event: str
) -> Response:
    private = request.args.get("private", "").lower() == "true"
    if private and not _may_write(services, caller, topic):
        return Response(status=202)
    data = request.get_data()
    if request.mimetype == "application/octet-stream":
        body: dict[str, Any] | BinaryPayload = BinaryPayload(event, data)
    else:
        try:
            parsed = json.loads(data or b"null")
        except ValueError:
            return _json(422, {"message": "Request body must be JSON"})
        body = {"payload": parsed, "event": event, "type": "broadcast"}
    services.hub.broadcast((topic, private), body)
    return Response(status=202)


def _may_write(services: Services, caller: Identity, topic: str) -> bool:
    try:
        return policies.can_write(services.pool, caller, topic, "broadcast")
    except Exception:
        return False
