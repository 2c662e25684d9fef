"""Websockets inside a WSGI app, on werkzeug's threaded server.

WSGI cannot upgrade a connection, but werkzeug's dev server hands the raw socket to the app as
`environ["werkzeug.socket"]`. The handshake is checked and answered with the `websockets`
library's sans-I/O `ServerProtocol` (101 and `Sec-WebSocket-Accept`, or its 400/426 refusal),
written straight to the socket; the connection is then served by `websockets.sync`'s
`Connection` on the request's own thread, for as long as it lasts.

When it ends, the app raises `UpgradeDone`, a ConnectionError: werkzeug takes it for a client
that went away and writes nothing more on the socket (flask-sock ends its sessions the same way).
"""

from __future__ import annotations

import socket
import struct
from typing import TYPE_CHECKING, Any

from websockets.datastructures import Headers
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.sync.connection import Connection

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

__all__ = ["Upgrade", "UpgradeDone", "is_upgrade", "upgrade"]


SEND_TIMEOUT_S = 10


class UpgradeDone(ConnectionError):
    """The websocket session is over; werkzeug must not write a response."""


class Upgrade:
    """A refused upgrade (`status`, `body`) or an accepted one (`connection`)."""

    def __init__(self, status: int, body: bytes, connection: Connection | None = None) -> None:
        self.status, self.body, self.connection = status, body, connection


def is_upgrade(environ: WSGIEnvironment) -> bool:
    return "websocket" in str(environ.get("HTTP_UPGRADE", "")).lower()


def _request(environ: WSGIEnvironment) -> Request:
    headers = Headers()
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").title()] = str(value)
    path = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO"))
    return Request(path or "/", headers)


def upgrade(environ: WSGIEnvironment, max_size: int) -> Upgrade:
    """Answer the handshake on the raw socket; the open connection, or the refusal to send."""
    sock: Any = environ.get("werkzeug.socket")
    if not isinstance(sock, socket.socket):
        return Upgrade(500, b"websockets need werkzeug's server (environ['werkzeug.socket'])")
    handshake = ServerProtocol(max_size=max_size)
    response = handshake.accept(_request(environ))
    if response.status_code != 101:
        return Upgrade(response.status_code, response.body or b"")
    sock.sendall(response.serialize())
    # A client that stops reading must not hold its writer (and the frames queued for it)
    # forever: a send blocked this long fails, and websockets closes the connection.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", SEND_TIMEOUT_S, 0))
    protocol = ServerProtocol(state=State.OPEN, max_size=max_size)
    connection = Connection(sock, protocol, close_timeout=2)
    return Upgrade(101, b"", connection)
