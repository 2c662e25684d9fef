"""`WireTransport` over TLS, as it reaches Upstash in production (`https://...upstash.io`).

The transport hands an ASCII host to getaddrinfo and to the TLS handshake as bytes, so that
neither encodes it with the `idna` codec (whose first use imports encodings.idna and
stringprep, ~2 ms of a cold start). These tests run it against a loopback TLS server whose
certificate names `localhost`: the name still reaches SNI and hostname verification (a call
to the same server as 127.0.0.1 is refused), and a fresh interpreter makes the call without
loading encodings.idna.
"""

from __future__ import annotations

import datetime
import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shared.upstash_wire import WireTransport
from tests.fixtures.server import ROOT

PONG = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n"
PONG += b'{"result":"PONG"}'
CALL = """
import sys
from shared.upstash_wire import WireTransport
reply = WireTransport(5.0).post(sys.argv[1], headers={"Authorization": "Bearer t"}, json=["PING"])
print(reply.status_code, reply.json()["result"], "encodings.idna" in sys.modules)
"""


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for `localhost`, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class TlsServer:
    """Answers every request on each TLS connection with PONG; records the SNI names sent."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.context.sni_callback = lambda _sock, name, _ctx: self.names.append(name) and None
        self.names: list[str | None] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            with self.context.wrap_socket(raw, server_side=True) as conn:
                data = b""
                while True:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                    while b"\r\n\r\n" in data:
                        head, _, data = data.partition(b"\r\n\r\n")
                        length = [
                            int(line.split(b":", 1)[1])
                            for line in head.split(b"\r\n")
                            if line.lower().startswith(b"content-length:")
                        ]
                        while len(data) < sum(length):
                            data += conn.recv(65536)
                        data = data[sum(length) :]
                        conn.sendall(PONG)
        except (OSError, ssl.SSLError):
            return

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TlsServer, Path]]:
    cert, key = _certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # create_default_context trusts it alone
    server = TlsServer(cert, key)
    yield server, cert
    server.close()


def test_the_host_name_reaches_sni_and_verification(tls: tuple[TlsServer, Path]) -> None:
    server, _ = tls
    transport = WireTransport(5.0)
    for _ in range(2):  # the second call reuses the connection
        reply = transport.post(
            f"https://localhost:{server.port}/", headers={"Authorization": "Bearer t"}, json=[]
        )
        assert (reply.status_code, reply.json()) == (200, {"result": "PONG"})
    assert server.names == ["localhost"]
    transport.close()
    with pytest.raises(ssl.SSLCertVerificationError):  # the certificate names localhost only
        WireTransport(5.0).post(f"https://127.0.0.1:{server.port}/", headers={}, json=[])


def test_a_fresh_interpreter_calls_without_the_idna_codec(tls: tuple[TlsServer, Path]) -> None:
    server, cert = tls
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SSL_CERT_FILE": str(cert)}
    url = f"https://localhost:{server.port}/"
    done = subprocess.run(
        [sys.executable, "-c", CALL, url],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["200", "PONG", "False"]
