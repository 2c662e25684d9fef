"""Upstash down, dropping connections or slow: reads go on (fail open, logged), sensitive
writes answer 503 (fail closed), and everything recovers without a restart."""

from __future__ import annotations

import io
import json
import sys
import time
from collections.abc import Iterator

import pytest

from shared import logs
from tests.envelope import assert_error
from tests.fixtures.server import Served, as_user


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    logs.set_stream(stream)
    yield stream
    logs.set_stream(sys.stdout)


@pytest.fixture
def upstash_trouble(upstash) -> Iterator[object]:
    yield upstash
    upstash.set_failure(None)


@pytest.mark.parametrize("mode", ["down", "drop", "slow"])
def test_reads_fail_open_and_writes_fail_closed(
    served: Served, upstash_trouble, log_lines: io.StringIO, mode: str
) -> None:
    upstash_trouble.set_failure(mode, delay_ms=3000)
    with as_user(served, "member") as client:
        started = time.monotonic()
        read = client.get("/me")
        read_seconds = time.monotonic() - started
        write = client.post("/workspaces", json={"name": f"during {mode}"})
    assert read.status_code == 200, read.text
    assert "RateLimit" not in read.headers
    assert read_seconds < 2.5  # bounded by the Upstash timeout (1 s), not the 3 s stall
    body = assert_error(write, 503, "UNAVAILABLE")
    assert "rate limiter" in body["error"]["message"]
    records = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    outages = [r for r in records if r["message"] == "rate limiter unavailable"]
    assert {(r["severity"], r["fail_open"]) for r in outages} == {
        ("WARNING", True),
        ("ERROR", False),
    }
    assert all(r["request_id"] for r in outages)

    upstash_trouble.set_failure(None)
    with as_user(served, "member") as client:
        recovered_read = client.get("/me")
        recovered_write = client.post("/workspaces", json={"name": f"after {mode}"})
    assert recovered_read.status_code == 200 and "RateLimit" in recovered_read.headers
    assert recovered_write.status_code == 201, recovered_write.text


def test_health_reports_redis_down_as_503(served: Served, upstash_trouble) -> None:
    upstash_trouble.set_failure("down")
    with served.client() as client:
        response = client.get("/health")
    body = assert_error(response, 503, "UNAVAILABLE")
    checks = {d["check"]: d for d in body["error"]["details"]}
    assert checks["redis"]["ok"] is False and checks["database"]["ok"] is True
