"""Limits and guards hold under concurrency."""

from __future__ import annotations

import threading
import uuid

from tests.fixtures.server import Served


def test_rate_limit_stays_exact_under_50_concurrent_requests(served: Served) -> None:
    token = served.token(str(uuid.uuid4()))
    barrier = threading.Barrier(50)
    statuses: list[int] = []
    seen: list[tuple[int, str | None, str | None]] = []
    lock = threading.Lock()

    def hit() -> None:
        with served.client(Authorization=f"Bearer {token}") as client:
            barrier.wait()
            response = client.get("/echo/tight")
        with lock:
            statuses.append(response.status_code)
            seen.append(
                (
                    response.status_code,
                    response.headers.get("RateLimit"),
                    response.headers.get("Date"),
                )
            )

    threads = [threading.Thread(target=hit) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(statuses) == 50
    assert statuses.count(200) == 3, [s for s in seen if s[0] != 429]  # 3 per minute
    assert statuses.count(429) == 47
