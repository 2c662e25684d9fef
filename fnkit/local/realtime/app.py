"""The local Realtime as one WSGI app, mounted by the gateway at `/realtime/v1`.

- `GET /websocket?apikey=<anon or service role key>&vsn=1.0.0|2.0.0`: the Phoenix socket. The
  apikey is checked before the upgrade (401 with Realtime's message); a request that is not a
  websocket upgrade gets 426.
- `POST /api/broadcast` and `POST /api/broadcast/<topic>/events/<event>`: REST broadcast.

Background threads, started with the app: the wire loop (every websocket's I/O), the Postgres
Changes feed (logical decoding), the
`realtime.messages` poller (broadcast from the database), and a sweeper that closes channels
whose token expired. `close()` stops them and the database pool.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from psycopg_pool import ConnectionPool
from werkzeug.wrappers import Request, Response

from fnkit.local.config import LocalConfig
from fnkit.local.realtime.auth import check_apikey
from fnkit.local.realtime.changes import ChangeFeed
from fnkit.local.realtime.context import Limits, Services
from fnkit.local.realtime.dbmessages import MessagePoller
from fnkit.local.realtime.rest import handle_broadcast
from fnkit.local.realtime.serializers import serializer_for
from fnkit.local.realtime.session import Session
from fnkit.local.realtime.websocket import UpgradeDone, is_upgrade, upgrade
from fnkit.local.realtime.wire import WireLoop

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["RealtimeApp", "create_app"]

_log = logging.getLogger(__name__)


class RealtimeApp:
    """The WSGI app; `services` is exposed for tests and the bench."""

    def __init__(self, config: LocalConfig, limits: Limits | None = None) -> None:
        pool: ConnectionPool[Any] = ConnectionPool(
            config.database_url,
            min_size=1,
            max_size=8,
            kwargs={"autocommit": True},
            # a connection the server ended is replaced on checkout, not handed out
            check=ConnectionPool.check_connection,
            open=True,
            name="fnkit-realtime",
        )
        self.services = Services(config=config, pool=pool, limits=limits or Limits())
        self.services.feed = ChangeFeed(config.database_url)
        self.messages = MessagePoller(config.database_url, self.services.hub)
        self.wire = WireLoop()
        self._stop = threading.Event()
        self._sweeper = threading.Thread(target=self._sweep, name="realtime-tokens", daemon=True)
        self.services.feed.start()
        self.messages.start()
        self._sweeper.start()

    def close(self) -> None:
        self._stop.set()
        if self.services.feed is not None:
            self.services.feed.stop()
        self.messages.stop()
        self._sweeper.join(timeout=5)
        self.wire.close()
        self.services.pool.close()

    def _sweep(self) -> None:
        while not self._stop.wait(1.0):
            for channel in self.services.hub.all_channels():
                try:
                    channel.check_expiry()
                except Exception:
                    _log.exception("realtime: closing an expired channel failed")

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        path = request.path
        if path.rstrip("/") == "/websocket":
            response = self._websocket(environ, request)
        elif path.startswith("/api/broadcast"):
            response = handle_broadcast(self.services, request, path)
        else:
            response = _json(404, {"message": "Not Found"})
        return response(environ, start_response)

    def _websocket(self, environ: WSGIEnvironment, request: Request) -> Response:
        apikey = request.args.get("apikey") or request.headers.get("x-api-key")
        problem = check_apikey(self.services.config, apikey)
        if problem is not None:
            return _json(401, {"error": problem})
        serializer = serializer_for(request.args.get("vsn"))
        if serializer is None:
            return _json(400, {"error": "unsupported vsn"})
        if not is_upgrade(environ):
            return _json(426, {"error": "a websocket upgrade is required"}, Upgrade="websocket")
        limits = self.services.limits
        accepted = upgrade(environ)
        if accepted.sock is None:
            return Response(accepted.body, status=accepted.status, content_type="text/plain")
        assert apikey is not None
        link = self.wire.attach(accepted.sock, limits.max_frame_bytes, limits.max_buffer_bytes)
        Session(link, self.services, serializer, apikey).run()
        raise UpgradeDone("websocket closed")


def _json(status: int, body: dict[str, Any], **headers: str) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json",
                    headers=headers)  # fmt: skip


def create_app(config: LocalConfig) -> RealtimeApp:
    """The local Realtime for `config`'s database (mounted at `/realtime/v1`)."""
    return RealtimeApp(config)
