"""A TCP proxy on loopback that counts request/response exchanges, seen from outside.

How an exchange is counted: the proxy holds every reply back for `delay` (2 ms), as a
network would, and remembers per connection whether a reply was delivered since the client
last sent. Client bytes that arrive after a delivery (or first on a connection) open a new
exchange: the client waited for an answer. Client bytes sent before any answer arrived belong
to the exchange already open, however many `send` calls they take: a pipelined batch
(BEGIN, queries, Sync) is one exchange even when the server is quick to answer its first part,
and so is an HTTP request written in two writes. Without the delay, loopback is so fast that
an early answer would split a pipeline that never waited.

Connections opened while counting are reported apart, because their handshakes (startup,
authentication) are exchanges too.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass

Target = tuple[str, int] | str  # (host, port) or a Unix socket path


@dataclass(frozen=True)
class Counts:
    exchanges: int = 0
    connections: int = 0
    bytes_up: int = 0
    bytes_down: int = 0

    def __sub__(self, other: Counts) -> Counts:
        return Counts(
            self.exchanges - other.exchanges,
            self.connections - other.connections,
            self.bytes_up - other.bytes_up,
            self.bytes_down - other.bytes_down,
        )


class CountingProxy:
    """`CountingProxy(("127.0.0.1", 5432)).start()`; point a client at `.port`."""

    def __init__(self, target: Target, delay: float = 0.002, record: int = 0) -> None:
        self.target = target
        self.delay = delay
        # The first bytes of the last `record` exchanges, for a person reading what was sent.
        self.recent: deque[bytes] = deque(maxlen=record or None) if record else deque(maxlen=0)
        self._lock = threading.Lock()
        self._exchanges = 0
        self._connections = 0
        self._up = 0
        self._down = 0
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._stopping = False

    @property
    def port(self) -> int:
        assert self._listener is not None
        return int(self._listener.getsockname()[1])

    def start(self) -> CountingProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, name="counting-proxy", daemon=True).start()
        return self

    def counts(self) -> Counts:
        with self._lock:
            return Counts(self._exchanges, self._connections, self._up, self._down)

    def stop(self) -> None:
        self._stopping = True
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
        with self._lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def _upstream(self) -> socket.socket:
        if isinstance(self.target, str):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(self.target)
        else:
            sock = socket.create_connection(self.target, timeout=5)
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                server = self._upstream()
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections += 1
                self._open.update((client, server))
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        # "c": the client spoke since the last reply was delivered; "s": a reply was delivered.
        last = ""
        held: deque[tuple[float, bytes]] = deque()  # replies waiting out the delay
        with selectors.DefaultSelector() as selector:
            selector.register(client, selectors.EVENT_READ, "c")
            selector.register(server, selectors.EVENT_READ, "s")
            try:
                while True:
                    timeout = max(0.0, held[0][0] - time.monotonic()) if held else None
                    for key, _ in selector.select(timeout):
                        side = key.data
                        data = (client if side == "c" else server).recv(65536)
                        if not data:
                            for _, rest in held:
                                client.sendall(rest)
                            return
                        if side == "s":
                            held.append((time.monotonic() + self.delay, data))
                            with self._lock:
                                self._down += len(data)
                            continue
                        with self._lock:
                            if last != "c":
                                self._exchanges += 1
                                self.recent.append(data[:200])
                            self._up += len(data)
                        last = "c"
                        server.sendall(data)
                    now = time.monotonic()
                    while held and held[0][0] <= now:
                        client.sendall(held.popleft()[1])
                        last = "s"
            except OSError:
                return
            finally:
                with self._lock:
                    self._open.discard(client)
                    self._open.discard(server)
                for sock in (client, server):
                    with contextlib.suppress(OSError):
                        sock.close()
