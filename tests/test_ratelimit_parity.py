"""The runtime's sliding window is upstash-ratelimit's: same decisions, counts and keys.

Both limiters run through the same requests at the same (simulated) clock against real Redis
behind the Upstash bridge: ours on its keep-alive EVALSHA path, upstash-ratelimit through
upstash-redis. Each answer is compared field by field, the keys each leaves are compared by
name and value, and a run that alternates the two on one prefix answers as either alone, so a
deployment can mix them on the same keys.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
import upstash_ratelimit.limiter as their_limiter
from upstash_ratelimit import Ratelimit
from upstash_ratelimit import SlidingWindow as TheirSlidingWindow
from upstash_redis import Redis

from fnkit.local.upstash.bridge import BridgeHandle
from shared.sliding_window import SLIDING_WINDOW, SlidingWindow
from shared.upstash_rest import UpstashError, UpstashRest

LIMIT, WINDOW_S = 5, 10
# Offsets in ms from a window's start: a burst past the limit, then the next windows at
# several fractions of overlap (the previous window's weight), then a long gap.
STEPS_MS = [
    0, 100, 200, 300, 400, 500, 600,
    10_000, 10_500, 12_500, 14_000, 15_000, 17_500, 19_999,
    20_000, 20_001, 23_000, 26_000, 29_000, 29_500,
    52_000, 52_100,
]  # fmt: skip


class Clock:
    def __init__(self, start_ms: int) -> None:
        self.now_ms = start_ms

    def seconds(self) -> float:
        return self.now_ms / 1000


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """One clock for both limiters; upstash-ratelimit reads time through `now_ms`."""
    start = 1_900_000_000_000 // (WINDOW_S * 1000) * (WINDOW_S * 1000)
    clock = Clock(start)
    monkeypatch.setattr(their_limiter, "now_ms", lambda: clock.now_ms)
    return clock


@pytest.fixture
def upstash_rest(upstash: BridgeHandle) -> Iterator[UpstashRest]:
    client = UpstashRest(upstash.url, upstash.token, 5.0)
    yield client
    client.close()


def theirs(redis: Redis, prefix: str) -> Callable[[str], tuple[bool, int, int, float]]:
    limiter = Ratelimit(redis, TheirSlidingWindow(max_requests=LIMIT, window=WINDOW_S), prefix)

    def limit(identifier: str) -> tuple[bool, int, int, float]:
        r = limiter.limit(identifier)
        return (r.allowed, r.limit, r.remaining, r.reset)

    return limit


def ours(
    upstash: UpstashRest, prefix: str, clock: Clock
) -> Callable[[str], tuple[bool, int, int, float]]:
    limiter = SlidingWindow(upstash, prefix, LIMIT, WINDOW_S, clock=clock.seconds)

    def limit(identifier: str) -> tuple[bool, int, int, float]:
        r = limiter.limit(identifier)
        return (r.allowed, r.limit, r.remaining, r.reset)

    return limit


def drive(
    clock: Clock, start: int, limiters: list[Callable[[str], tuple[bool, int, int, float]]]
) -> list[tuple[bool, int, int, float]]:
    answers = []
    for index, step in enumerate(STEPS_MS):
        clock.now_ms = start + step
        answers.append(limiters[index % len(limiters)]("caller"))
    return answers


def keys_under(upstash: BridgeHandle, prefix: str) -> dict[str, bytes]:
    return {
        key.decode().removeprefix(prefix): upstash.redis.get(key)
        for key in upstash.redis.scan_iter(match=f"{prefix}*")
    }


def test_same_decisions_counts_and_keys_as_upstash_ratelimit(
    clock: Clock, upstash: BridgeHandle, upstash_redis: Redis, upstash_rest: UpstashRest
) -> None:
    run = uuid.uuid4().hex[:8]
    start = clock.now_ms
    expected = drive(clock, start, [theirs(upstash_redis, f"parity:{run}:theirs")])
    got = drive(clock, start, [ours(upstash_rest, f"parity:{run}:ours", clock)])
    assert got == expected
    # The sequence means something: refusals, and recoveries through the weighted window.
    decisions = [answer[0] for answer in expected]
    assert decisions.count(False) >= 4 and decisions[-1] is True
    assert {answer[2] for answer in expected} >= {0, 1, 4}
    assert keys_under(upstash, f"parity:{run}:ours") == keys_under(upstash, f"parity:{run}:theirs")


def test_mixing_both_on_the_same_keys_answers_as_either_alone(
    clock: Clock, upstash_redis: Redis, upstash_rest: UpstashRest
) -> None:
    run = uuid.uuid4().hex[:8]
    start = clock.now_ms
    alone = drive(clock, start, [theirs(upstash_redis, f"parity:{run}:alone")])
    shared_prefix = f"parity:{run}:mixed"
    mixed = drive(
        clock,
        start,
        [ours(upstash_rest, shared_prefix, clock), theirs(upstash_redis, shared_prefix)],
    )
    assert mixed == alone


def test_evalsha_falls_back_to_eval_once_when_the_script_is_unknown(
    upstash: BridgeHandle, upstash_rest: UpstashRest, clock: Clock
) -> None:
    upstash.redis.script_flush()
    limiter = SlidingWindow(upstash_rest, f"parity:{uuid.uuid4().hex[:8]}", LIMIT, WINDOW_S,
                            clock=clock.seconds)  # fmt: skip
    assert limiter.limit("caller").remaining == LIMIT - 1  # NOSCRIPT, then EVAL
    assert upstash_rest.command("SCRIPT", "EXISTS", SLIDING_WINDOW.sha) == [1]
    assert limiter.limit("caller").remaining == LIMIT - 2  # EVALSHA


def test_an_upstash_error_is_raised_not_read_as_an_answer(upstash_rest: UpstashRest) -> None:
    with pytest.raises(UpstashError, match=r"unknown command|ERR"):
        upstash_rest.command("NOSUCHCOMMAND", "x")
