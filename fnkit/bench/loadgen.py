"""A bounded HTTP/1.1 load generator in Python, for machines without `wrk`.

`python -m fnkit.bench.loadgen --url ... --seconds 10 --connections 16 --requests-file F`
keeps `--connections` keep-alive connections busy (one request in flight each) until the time
is up and prints one JSON line like the wrk script's: requests, errors, p50/p99 in µs.

It runs in its own process but on the same cores as the server: every request it sends costs
CPU the server then lacks, more than wrk's C loop does. The report names the generator used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from fnkit.bench.stats import percentile


class _Tally:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors = 0


async def _one_connection(
    host: str, port: int, requests: list[bytes], offset: int, stop: float, out: _Tally
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    n = offset
    try:
        while time.perf_counter() < stop:
            n += 1
            started = time.perf_counter()
            writer.write(requests[n % len(requests)])
            status = await _read_response(reader)
            out.latencies.append((time.perf_counter() - started) * 1e6)
            if status >= 400:
                out.errors += 1
    except (OSError, asyncio.IncompleteReadError, ValueError):
        out.errors += 1
    finally:
        writer.close()


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)
    }
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readline()).strip() or b"0", 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


def build_requests(url: str, method: str, body: str | None, tokens: list[str]) -> list[bytes]:
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    payload = body.encode() if body else b""
    out = []
    for token in tokens:
        head = (
            f"{method} {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Authorization: Bearer {token}\r\nAccept: application/json\r\n"
        )
        if payload:
            head += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        out.append(head.encode() + b"\r\n" + payload)
    return out


async def run(url: str, requests: list[bytes], seconds: float, connections: int) -> dict[str, Any]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    stop = time.perf_counter() + seconds
    tallies = [_Tally() for _ in range(connections)]
    started = time.perf_counter()
    await asyncio.gather(
        *(_one_connection(host, port, requests, i * 7919, stop, t) for i, t in enumerate(tallies))
    )
    elapsed = time.perf_counter() - started
    latencies = sorted(x for t in tallies for x in t.latencies)
    return {
        "requests": len(latencies),
        "duration_us": int(elapsed * 1e6),
        "p50_us": percentile(latencies, 50),
        "p99_us": percentile(latencies, 99),
        "errors": sum(t.errors for t in tallies),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fnkit.bench.loadgen")
    parser.add_argument("--url", required=True)
    parser.add_argument("--method", default="GET")
    parser.add_argument("--body")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--tokens-file", required=True)
    args = parser.parse_args(argv)
    with open(args.tokens_file) as handle:
        tokens = json.load(handle)
    requests = build_requests(args.url, args.method, args.body, tokens)
    result = asyncio.run(run(args.url, requests, args.seconds, args.connections))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
