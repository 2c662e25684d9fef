"""Websockets inside a WSGI app, on werkzeug's threaded server.

WSGI cannot upgrade a connection, but werkzeug's dev server hands the raw socket to the app as
`environ["werkzeug.socket"]`. The handshake is checked and answered with the `websockets`
library's sans-I/O `ServerProtocol` (101 and `Sec-WebSocket-Accept`, or its 400/426 refusal),
written straight to the socket; the connection's I/O then moves to the wire loop (`wire.py`)
while its session runs on the request's own thread, for as long as it lasts.

When it ends, the app raises `UpgradeDone`, a ConnectionError: werkzeug takes it for a client
that went away and writes nothing more on the socket (flask-sock ends its sessions the same way).
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

from websockets.datastructures import Headers
from websockets.http11 import Request
from websockets.server import ServerProtocol

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

__all__ = ["Upgrade", "UpgradeDone", "is_upgrade", "upgrade"]


class UpgradeDone(ConnectionError):
    """The websocket session is over; werkzeug must not write a response."""


class Upgrade:
    """A refused upgrade (`status`, `body`) or an accepted one (`sock`, a duplicate of the
    request's socket descriptor, for the wire loop to own)."""

    def __init__(self, status: int, body: bytes, sock: socket.socket | None = None) -> None:
        self.status, self.body, self.sock = status, body, sock


def is_upgrade(environ: WSGIEnvironment) -> bool:
    return "websocket" in str(environ.get("HTTP_UPGRADE", "")).lower()


def _request(environ: WSGIEnvironment) -> Request:
    headers = Headers()
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").title()] = str(value)
    path = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO"))
    return Request(path or "/", headers)


def upgrade(environ: WSGIEnvironment) -> Upgrade:
    """Answer the handshake on the raw socket; the upgraded socket, or the refusal to send."""
    sock: Any = environ.get("werkzeug.socket")
    if not isinstance(sock, socket.socket):
        return Upgrade(500, b"websockets need werkzeug's server (environ['werkzeug.socket'])")
    handshake = ServerProtocol()
    response = handshake.accept(_request(environ))
    if response.status_code != 101:
        return Upgrade(response.status_code, response.body or b"")
    sock.sendall(response.serialize())
    return Upgrade(101, b"", sock.dup())
