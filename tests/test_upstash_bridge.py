"""The Upstash REST bridge, exercised with the real upstash-redis and upstash-ratelimit clients
against the machine Redis and against embedded fakeredis."""

from __future__ import annotations

import base64
import hashlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from upstash_ratelimit import FixedWindow, Ratelimit, SlidingWindow, TokenBucket
from upstash_ratelimit.limiter import Limiter
from upstash_redis import Redis
from upstash_redis.errors import UpstashError

from fnkit.local.upstash.bridge import BridgeHandle, resolve_redis_url, start_bridge
from fnkit.local.upstash.parity import summarize


@pytest.fixture(params=["redis", "embedded"])
def bridge(request: pytest.FixtureRequest) -> BridgeHandle:
    """Every test here runs against the session's Redis (the machine's, or the embedded
    fallback where none answers, as every other test uses it) and against fakeredis."""
    name = "upstash_embedded" if request.param == "embedded" else "upstash"
    handle: BridgeHandle = request.getfixturevalue(name)
    return handle


def client_for(bridge: BridgeHandle, encoding: Literal["base64"] | None = "base64") -> Redis:
    """The real client as the runtime builds it: no retries, so failures surface at once."""
    return Redis(url=bridge.url, token=bridge.token, rest_encoding=encoding, rest_retries=0)


@pytest.fixture(params=["base64", None], ids=["base64", "plain"])
def client(bridge: BridgeHandle, request: pytest.FixtureRequest) -> Iterator[Redis]:
    """The real client with the Upstash-Encoding header on (its default) and off."""
    redis = client_for(bridge, request.param)
    yield redis
    redis.close()  # type: ignore[no-untyped-call]


@pytest.fixture
def key() -> str:
    return f"test:bridge:{uuid.uuid4().hex}"


def set_ok(redis: Redis, key: str, value: str | int) -> bool:
    """SET through the client; its stubs say str but it returns True (format_set)."""
    answer: object = redis.set(key, value)
    return answer is True


def post(bridge: BridgeHandle, path: str, body: Any, **headers: str) -> httpx.Response:
    auth = {"Authorization": f"Bearer {bridge.token}"}
    return httpx.post(f"{bridge.url}{path}", json=body, headers={**auth, **headers})


# --- Commands ------------------------------------------------------------------------------


def test_string_and_key_commands(client: Redis, key: str) -> None:
    assert set_ok(client, key, "v1")
    assert client.get(key) == "v1"
    assert set_ok(client, f"{key}:n", 41)
    assert client.incr(f"{key}:n") == 42
    assert client.incrby(f"{key}:n", 8) == 50
    assert client.expire(key, 100) is True
    assert 0 < client.ttl(key) <= 100
    assert client.mget(key, f"{key}:missing", f"{key}:n") == ["v1", None, "50"]
    assert client.exists(key, f"{key}:n", f"{key}:missing") == 2
    assert client.delete(key, f"{key}:n") == 2
    assert client.get(key) is None


def test_hash_commands(client: Redis, key: str) -> None:
    assert client.hset(key, values={"name": "Ada", "role": "admin"}) == 2
    assert client.hgetall(key) == {"name": "Ada", "role": "admin"}
    assert client.hget(key, "name") == "Ada"
    assert client.hincrby(key, "visits", 3) == 3
    assert client.hmget(key, "role", "nope") == ["admin", None]


VALUES = [
    "héllo wörld ✓ 🚀 日本語",
    "tab\there\nnewline\r\nnul\x00byte\x01\x7f",
    "OK",  # the one string the client never base64-decodes
    "T0s=",  # looks like base64
    "",
    '{"json": [1, 2.5, null]}',
    "  leading and trailing  ",
    "x" * 100_000,
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_values_round_trip(client: Redis, key: str, value: str) -> None:
    client.set(key, value)
    assert client.get(key) == value
    client.hset(f"{key}:h", values={"ünï": value})  # hset(key, field, "") drops the pair
    assert client.hgetall(f"{key}:h") == {"ünï": value}


def test_unicode_keys(client: Redis) -> None:
    key = f"test:bridge:ключ:{uuid.uuid4().hex}:🔑"
    client.set(key, "v")
    assert client.get(key) == "v"
    assert client.keys(f"{key[:-1]}*") == [key]


def test_base64_is_binary_safe_and_nested(bridge: BridgeHandle, key: str) -> None:
    raw = bytes(range(256))  # not UTF-8: only base64 can carry it
    bridge.redis.set(key, raw)
    bridge.redis.rpush(f"{key}:l", b"\xff\xfe", b"OK", b"plain")
    answer = post(bridge, "/", ["GET", key], **{"Upstash-Encoding": "base64"})
    assert base64.b64decode(answer.json()["result"]) == raw
    nested = post(bridge, "/", ["LRANGE", f"{key}:l", 0, -1], **{"Upstash-Encoding": "base64"})
    assert [base64.b64decode(v) for v in nested.json()["result"]] == [b"\xff\xfe", b"OK", b"plain"]
    status = post(bridge, "/", ["SET", key, "x"], **{"Upstash-Encoding": "base64"})
    assert status.json() == {"result": "OK"}  # status reply stays verbatim
    stored_ok = post(bridge, "/", ["LINDEX", f"{key}:l", 1], **{"Upstash-Encoding": "base64"})
    assert stored_ok.json() == {"result": "OK"}  # at top level a stored "OK" reads the same
    plain = post(bridge, "/", ["LRANGE", f"{key}:l", 0, -1])
    assert plain.json() == {"result": ["\ufffd\ufffd", "OK", "plain"]}  # lossy without base64


def test_numbers_and_integral_floats_as_arguments(client: Redis, key: str) -> None:
    assert client.incrbyfloat(key, 1.5) == 1.5
    assert client.execute(["SET", f"{key}:i", 10.0]) is True
    assert client.get(f"{key}:i") == "10"


# --- Pipelines and transactions ---------------------------------------------------------


def test_pipeline(client: Redis, key: str) -> None:
    pipe = client.pipeline()
    pipe.set(key, "1")
    pipe.incr(key)
    pipe.get(key)
    pipe.hset(f"{key}:h", values={"a": "1"})
    pipe.hgetall(f"{key}:h")
    assert pipe.exec() == [True, 2, "2", 1, {"a": "1"}]


def test_multi_exec(client: Redis, key: str) -> None:
    tx = client.multi()
    tx.set(key, "10")
    tx.incrby(key, 5)
    tx.get(key)
    assert tx.exec() == [True, 15, "15"]


def test_pipeline_error_fails_alone(bridge: BridgeHandle, key: str) -> None:
    answer = post(bridge, "/pipeline", [["SET", key, "a"], ["INCR", key], ["GET", key]])
    assert answer.status_code == 200
    assert answer.json() == [
        {"result": "OK"},
        {"error": "ERR value is not an integer or out of range"},
        {"result": "a"},
    ]


def test_transaction_runtime_error_is_per_command(bridge: BridgeHandle, key: str) -> None:
    answer = post(bridge, "/multi-exec", [["SET", key, "a"], ["LPUSH", key, "x"], ["GET", key]])
    body = answer.json()
    assert body[0] == {"result": "OK"} and body[2] == {"result": "a"}
    assert body[1]["error"].startswith("WRONGTYPE")
    with pytest.raises(UpstashError, match="WRONGTYPE"):
        tx = client_for(bridge).multi()
        tx.lpush(key, "x")
        tx.exec()


def test_transaction_queue_error_runs_nothing(bridge: BridgeHandle, key: str) -> None:
    answer = post(bridge, "/multi-exec", [["SET", key, "a"], ["NOSUCHCOMMAND"]])
    assert answer.status_code == 400
    first, second = answer.json()
    assert second["error"].startswith("ERR unknown command")
    assert (
        first["error"]
        == f"EXECABORT Transaction discarded because of previous errors: {second['error']}"
    )
    assert bridge.redis.get(key) is None
    tx = client_for(bridge).multi()
    tx.set(key, "a")
    tx.execute(["WATCH", key])  # connection state has no meaning over REST
    with pytest.raises(UpstashError, match=r"^EXECABORT .*not available: 'WATCH'"):
        tx.exec()
    assert bridge.redis.get(key) is None


# --- Protocol edges ---------------------------------------------------------------------


def test_missing_or_wrong_token_is_401(bridge: BridgeHandle) -> None:
    bare = httpx.post(bridge.url, json=["PING"])
    assert (bare.status_code, bare.json()) == (401, {"error": "Unauthorized"})
    wrong = post(bridge, "/", ["PING"], Authorization="Bearer nope")
    assert (wrong.status_code, wrong.json()) == (401, {"error": "Unauthorized"})
    with pytest.raises(UpstashError, match="Unauthorized"):
        Redis(url=bridge.url, token="nope", rest_retries=0).get("k")


def test_errors_come_back_as_upstash_errors(bridge: BridgeHandle, key: str) -> None:
    answer = post(bridge, "/", ["NOSUCHCOMMAND", "x"])
    assert answer.status_code == 400
    assert answer.json()["error"].startswith("ERR unknown command")
    redis = client_for(bridge)
    with pytest.raises(UpstashError, match=r"^ERR unknown command"):
        redis.execute(["NOSUCHCOMMAND"])
    redis.set(key, "text")
    with pytest.raises(UpstashError, match=r"^ERR value is not an integer"):
        redis.incr(key)
    with pytest.raises(UpstashError, match=r"^WRONGTYPE"):
        redis.hgetall(key)
    bad = httpx.post(
        bridge.url, content=b"{not json", headers={"Authorization": f"Bearer {bridge.token}"}
    )
    assert bad.status_code == 400 and bad.json()["error"].startswith("ERR")


def test_rest_path_form(bridge: BridgeHandle, key: str) -> None:
    auth = {"Authorization": f"Bearer {bridge.token}"}
    assert httpx.get(f"{bridge.url}/set/{key}/a%2Fb", headers=auth).json() == {"result": "OK"}
    assert httpx.get(f"{bridge.url}/get/{key}?_token={bridge.token}").json() == {"result": "a/b"}
    posted = httpx.post(f"{bridge.url}/set/{key}", content="from body", headers=auth)
    assert posted.json() == {"result": "OK"}
    assert bridge.redis.get(key) == b"from body"


def test_flushall_only_flushes_this_database(bridge: BridgeHandle, key: str) -> None:
    assert post(bridge, "/", ["FLUSHALL"]).json() == {"result": "OK"}
    assert post(bridge, "/", ["DBSIZE"]).json() == {"result": 0}


def test_concurrent_clients(bridge: BridgeHandle, key: str) -> None:
    def bump(_: int) -> None:
        redis = client_for(bridge)
        for _ in range(25):
            redis.incr(key)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(bump, range(8)))
    assert bridge.redis.get(key) == b"200"


# --- Scripts and rate limits ------------------------------------------------------------

LIMITERS: dict[str, Limiter] = {
    "fixed": FixedWindow(max_requests=5, window=1, unit="h"),
    "sliding": SlidingWindow(max_requests=5, window=1, unit="h"),
    "token": TokenBucket(max_tokens=5, refill_rate=1, interval=1, unit="h"),
}


@pytest.mark.parametrize("name", LIMITERS)
def test_ratelimit_exact_counts(client: Redis, key: str, name: str) -> None:
    ratelimit = Ratelimit(redis=client, limiter=LIMITERS[name], prefix=key)
    started = time.time()
    answers = [ratelimit.limit("user-1") for _ in range(6)]
    assert [a.allowed for a in answers] == [True] * 5 + [False]
    assert [a.remaining for a in answers] == [4, 3, 2, 1, 0, 0]
    assert all(a.limit == 5 and a.reset > started for a in answers)
    assert ratelimit.get_remaining("user-1") == 0
    assert ratelimit.limit("user-2").remaining == 4  # identifiers are independent


def test_evalsha_uses_the_clients_digest_of_the_original_script(client: Redis, key: str) -> None:
    script = FixedWindow.SCRIPT
    digest = hashlib.sha1(script.encode()).hexdigest()
    assert client.script_load(script) == digest
    assert client.script_exists(digest) == [True]
    assert client.evalsha(digest, keys=[key], args=["60000", "1"]) == 1
    assert client.evalsha(digest, keys=[key], args=["60000", "1"]) == 2
    with pytest.raises(UpstashError, match=r"^NOSCRIPT"):
        client.evalsha("0" * 40, keys=[key])
    assert client.eval("return {KEYS[1], ARGV[1], 7}", keys=[key], args=["é"]) == [key, "é", 7]


# --- Faults and lifecycle ---------------------------------------------------------------


@pytest.fixture
def own_bridge() -> Iterator[BridgeHandle]:
    """A private bridge, so fault switches cannot disturb other tests."""
    with start_bridge(embedded=True) as handle:
        yield handle


def test_down_then_recovered(own_bridge: BridgeHandle, key: str) -> None:
    redis = client_for(own_bridge)
    redis.set(key, "v")
    own_bridge.set_failure("down")
    with pytest.raises(UpstashError, match="Service Unavailable"):
        redis.get(key)
    assert httpx.post(own_bridge.url, json=["GET", key]).status_code == 503
    own_bridge.set_failure(None)
    assert redis.get(key) == "v"


def test_dropped_connection_raises_a_transport_error(own_bridge: BridgeHandle, key: str) -> None:
    redis = client_for(own_bridge)
    own_bridge.set_failure("drop")
    with pytest.raises(httpx.TransportError):
        redis.get(key)
    own_bridge.set_failure(None)
    assert redis.get(key) is None


def test_slow_delays_every_answer(own_bridge: BridgeHandle, key: str) -> None:
    redis = client_for(own_bridge)
    own_bridge.set_failure("slow", delay_ms=200)
    started = time.perf_counter()
    assert set_ok(redis, key, "v")
    assert time.perf_counter() - started >= 0.2
    with pytest.raises(ValueError):
        own_bridge.set_failure("sideways")  # type: ignore[arg-type]


def test_stop_and_restart_on_the_same_port(key: str) -> None:
    first = start_bridge(embedded=True)
    redis = client_for(first)
    redis.set(key, "kept")  # also leaves a kept-alive connection open
    first.stop()
    with pytest.raises(httpx.TransportError):
        redis.get(key)
    with start_bridge(port=first.port, embedded=True) as second:
        assert second.url == first.url
        assert redis.get(key) == "kept"  # embedded data outlives the bridge, as Redis would


def test_resolve_redis_url_prefers_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://example.invalid:6390/3")
    assert resolve_redis_url() == "redis://example.invalid:6390/3"
    monkeypatch.delenv("REDIS_URL")
    assert resolve_redis_url() in ("redis://127.0.0.1:6379", None)


def test_unreachable_redis_fails_fast() -> None:
    import redis

    with pytest.raises(redis.ConnectionError):
        start_bridge(redis_url="redis://127.0.0.1:1/0")


def test_session_fixture_uses_its_own_database(
    upstash: BridgeHandle, upstash_redis: Redis, key: str
) -> None:
    upstash_redis.set(key, "v")
    assert upstash.redis.get(key) == b"v"
    if not upstash.embedded:
        db = upstash.redis.connection_pool.connection_kwargs["db"]
        chosen = os.environ.get("FNKIT_TEST_REDIS_DB")
        assert db == int(chosen) if chosen else 9 <= db <= 15
        assert upstash.redis_url is not None and upstash.redis_url.endswith(f"/{db}")


# --- Parity with Upstash (issue 16): each gap the client's own suite found --------------


def test_every_answer_carries_a_growing_sync_token(bridge: BridgeHandle, key: str) -> None:
    tokens = []
    for path, body in (("/", ["SET", key, "1"]), ("/pipeline", [["GET", key]]),
                       ("/multi-exec", [["INCR", key]]), ("/", ["NOSUCHCOMMAND"])):  # fmt: skip
        answer = post(bridge, path, body)
        tokens.append(answer.headers["upstash-sync-token"])
    epochs = {token.rsplit("-", 1)[0] for token in tokens}
    numbers = [int(token.rsplit("-", 1)[1]) for token in tokens]
    assert len(epochs) == 1 and numbers == sorted(numbers) and len(set(numbers)) == 4


def test_read_your_writes_with_the_real_client(bridge: BridgeHandle, key: str) -> None:
    redis = client_for(bridge)
    assert redis._sync_token == ""
    redis.set(key, "written")
    first = redis._sync_token
    assert first  # the client keeps the bridge's token ...
    assert redis.get(key) == "written"  # ... sends it back, and reads its write
    assert redis._sync_token != first
    # A token this bridge issued is honoured; a foreign or empty one has nothing to wait for.
    for token in (redis._sync_token, "", "elsewhere-99", "garbage"):
        answer = post(bridge, "/", ["GET", key], **{"Upstash-Sync-Token": token})
        assert answer.json() == {"result": "written"}
    off = Redis(url=bridge.url, token=bridge.token, read_your_writes=False, rest_retries=0)
    off.set(key, "x")
    assert off._sync_token == ""


def test_zrange_and_zrangestore_by_rank_with_limit(client: Redis, key: str) -> None:
    client.zadd(key, {"m1": 1, "m2": 2, "m3": 3, "m4": 4})
    dst = f"{key}:dst"
    assert client.zrangestore(dst, key, 0, 2, offset=1, count=1) == 1
    assert client.zrange(dst, 0, -1, withscores=True) == [("m2", 2.0)]
    assert client.zrangestore(dst, key, 0, -1, rev=True, offset=1, count=2) == 2
    assert client.zrange(dst, 0, -1) == ["m2", "m3"]
    assert client.zrangestore(dst, key, -2, -1, offset=0, count=-1) == 2
    assert client.zrange(dst, 0, -1) == ["m3", "m4"]
    assert client.zrangestore(dst, key, 0, 1, offset=5, count=1) == 0
    assert client.exists(dst) == 0
    assert client.execute(["ZRANGE", key, 0, -1, "LIMIT", 1, 2]) == ["m2", "m3"]
    # By score, LIMIT is Redis's own and passes through untouched.
    assert client.zrangestore(dst, key, 1, 4, sortby="BYSCORE", offset=1, count=2) == 2


def _add_entries(client: Redis, key: str, count: int) -> None:
    pipe = client.pipeline()
    for i in range(count):
        pipe.xadd(key, "*", {"n": str(i)})
    pipe.exec()


def test_approximate_trimming_as_upstash(client: Redis, key: str) -> None:
    """`MAXLEN ~` as upstash-redis's own tests find it on Upstash: nothing trimmed while the
    stream is less than 100 entries over (111 trimmed to ~30 stay 111), exactly trimmed
    beyond (130 trimmed to ~5 leave 5, where Redis's whole nodes would leave 30)."""
    _add_entries(client, key, 110)
    assert isinstance(client.xadd(key, "*", {"n": "110"}, maxlen=30), str)  # ~ by default
    assert client.xlen(key) == 111
    assert client.xtrim(key, maxlen=30) == 0
    _add_entries(client, key, 19)
    assert client.xtrim(key, maxlen=5) == 125
    assert client.xlen(key) == 5
    _add_entries(client, key, 120)
    client.xadd(key, "*", {"n": "last"}, maxlen=20)
    assert client.xlen(key) == 20
    assert client.xtrim(key, maxlen=3, approximate=False) == 17  # `=` is Redis's own
    assert client.xadd(f"{key}:none", "*", {"n": "1"}, maxlen=1, nomkstream=True) is None
    with pytest.raises(UpstashError, match=r"^ERR The ID specified in XADD is equal or smaller"):
        client.xadd(key, "0-1", {"n": "old"}, maxlen=1)
    client.set(f"{key}:s", "s")
    with pytest.raises(UpstashError, match=r"^WRONGTYPE Operation against a key[^:]*$"):
        client.xtrim(f"{key}:s", maxlen=1)


def test_xinfo_consumers_of_a_missing_group_is_empty(bridge: BridgeHandle, key: str) -> None:
    """Upstash lists no consumers for a group the stream lacks, where Redis says NOGROUP;
    a missing stream, and other commands on a missing group, stay errors."""
    client = client_for(bridge)
    client.xadd(key, "*", {"a": "1"})
    assert client.xinfo_consumers(key, "nope") == []
    with pytest.raises(UpstashError, match=r"^ERR no such key"):
        client.xinfo_consumers(f"{key}:missing", "nope")
    with pytest.raises(UpstashError, match=r"^NOGROUP .*'nope'"):
        client.xpending(key, "nope")
    with pytest.raises(UpstashError, match=r"^ERR no such key"):
        client.xinfo_groups(f"{key}:missing")
    assert client.xinfo_groups(key) == []
    body = [["XINFO", "CONSUMERS", key, "nope"], ["XINFO", "CONSUMERS", key, "nope", "extra"]]
    assert post(bridge, "/pipeline", body).json()[0] == {"result": []}
    assert post(bridge, "/multi-exec", body[:1]).json() == [{"result": []}]


def test_scan_with_match_fills_its_page(client: Redis, bridge: BridgeHandle, key: str) -> None:
    bridge.redis.mset({f"{key}:filler:{i}": "x" for i in range(300)})
    bridge.redis.hset(f"{key}:h", mapping={f"f{i}": "v" for i in range(300)})
    cursor, found = client.scan(0, match=f"{key}:filler:7", count=10)
    assert (cursor, found) == (0, [f"{key}:filler:7"])
    assert client.scan(0, match=f"{key}:h", type="hash") == (0, [f"{key}:h"])
    cursor, fields = client.hscan(f"{key}:h", 0, match="f29*", count=100)
    assert cursor == 0 and sorted(fields) == sorted([f"f29{i}" for i in range(10)] + ["f29"])
    bridge.redis.delete(*[f"{key}:filler:{i}" for i in range(300)])


def _scan_all(pages: Callable[[int], tuple[int, list[Any]]]) -> list[list[Any]]:
    """Every page of a scan, from cursor 0 to cursor 0."""
    cursor, found = pages(0)
    answered = [found]
    for _ in range(1000):
        if cursor == 0:
            return answered
        cursor, found = pages(cursor)
        answered.append(found)
    raise AssertionError("the scan did not end")


def test_scan_pages_have_count_elements(client: Redis, bridge: BridgeHandle, key: str) -> None:
    """Every page but the last has exactly COUNT elements, as Upstash answers (Redis answers
    what the slots it visited held: two keys in one slot for COUNT 1, a small hash whole),
    and the pages together hold every element once."""
    keys = [f"{key}:k{i}" for i in range(60)]
    bridge.redis.mset(dict.fromkeys(keys, "x"))
    bridge.redis.hset(f"{key}:h", mapping={f"f{i}": str(i) for i in range(50)})
    bridge.redis.sadd(f"{key}:s", *range(50))
    bridge.redis.zadd(f"{key}:z", {f"m{i}": i for i in range(50)})
    cursor, found = client.scan(0, count=1)
    assert cursor != 0 and len(found) == 1
    cursor, found = client.scan(cursor, count=1)
    assert cursor != 0 and len(found) == 1
    for pages, total in [
        (_scan_all(lambda c: client.scan(c, match=f"{key}:k*", count=7)), keys),
        (_scan_all(lambda c: client.sscan(f"{key}:s", c, count=7)), [str(i) for i in range(50)]),
        (_scan_all(lambda c: client.hscan(f"{key}:h", c, count=7)), [f"f{i}" for i in range(50)]),
        (_scan_all(lambda c: client.zscan(f"{key}:z", c, count=7)), [f"m{i}" for i in range(50)]),
    ]:
        assert [len(page) for page in pages[:-1]] == [7] * (len(pages) - 1)
        assert 1 <= len(pages[-1]) <= 7
        names = [item[0] if isinstance(item, tuple) else item for page in pages for item in page]
        assert sorted(names) == sorted(total)
    bridge.redis.delete(*keys)


def test_a_scan_cursor_outlives_its_bridge(bridge: BridgeHandle, key: str) -> None:
    """A bridge's cursor carries the Redis cursor its held elements came from: another bridge
    (or this one restarted) reads that page again, repeating elements but missing none. A
    pipeline reads it the same way. (fakeredis pages by COUNT itself: nothing is held.)"""
    client = client_for(bridge)
    bridge.redis.sadd(key, *range(40))  # one listpack: Redis answers all 40 at once
    cursor, first = client.sscan(key, 0, count=5)
    assert len(first) == 5 and (cursor >= 2**64) == (not bridge.embedded)
    with start_bridge(embedded=bridge.embedded, redis_url=bridge.redis_url) as other:
        pages = _scan_all(lambda c: client_for(other).sscan(key, c or cursor, count=5))
    rest = [member for page in pages for member in page]
    assert sorted(set(first + rest), key=int) == [str(i) for i in range(40)]
    piped, plain = (
        post(bridge, "/pipeline", [["SSCAN", key, str(c), "COUNT", "5"]]).json()
        for c in (cursor, cursor % 2**64)
    )
    assert piped == plain and "result" in piped[0]


def test_a_scan_cursor_belongs_to_its_scan(bridge: BridgeHandle, key: str) -> None:
    """A cursor sent with another command (another key, another COUNT) does not take the
    elements held for its own scan, which then goes on without repeating any."""
    client = client_for(bridge)
    bridge.redis.sadd(key, *range(40))
    bridge.redis.sadd(f"{key}:other", *range(100, 140))
    cursor, first = client.sscan(key, 0, count=5)
    _, borrowed = client.sscan(f"{key}:other", cursor, count=5)
    assert len(borrowed) == 5 and all(int(member) >= 100 for member in borrowed)
    client.sscan(key, cursor, count=6)
    cursor, second = client.sscan(key, cursor, count=5)
    assert len(second) == 5 and not set(first) & set(second)


def test_scripts_are_per_database(bridge: BridgeHandle, key: str) -> None:
    """SCRIPT FLUSH forgets this database's scripts, and only this database's."""
    with start_bridge(embedded=bridge.embedded, redis_url=bridge.redis_url) as other:
        mine, theirs = client_for(bridge), client_for(other)
        sha = theirs.script_load("return 'theirs'")
        assert mine.script_exists(sha) == [False]  # loaded elsewhere: not in this database
        with pytest.raises(UpstashError, match=r"^NOSCRIPT"):
            mine.evalsha(sha)
        assert mine.script_load("return 'theirs'") == sha
        assert mine.script_flush() is True
        assert mine.script_exists(sha) == [False]
        assert theirs.evalsha(sha) == "theirs"  # the other database keeps its scripts
    pipe = client_for(bridge).pipeline()
    pipe.script_load("return 1")
    pipe.script_exists(hashlib.sha1(b"return 1").hexdigest(), "0" * 40)
    pipe.script_flush("ASYNC")
    pipe.script_exists(hashlib.sha1(b"return 1").hexdigest())
    assert pipe.exec() == [hashlib.sha1(b"return 1").hexdigest(), [True, False], True, [False]]


async def _async_scripts(bridge: BridgeHandle) -> list[object]:
    from upstash_redis.asyncio import Redis as AsyncRedis

    async with AsyncRedis(url=bridge.url, token=bridge.token, rest_retries=0) as redis:
        await redis.script_flush()
        sha = await redis.script_load("return 2")
        return [await redis.evalsha(sha), await redis.script_exists(sha, "0" * 40),
                await redis.script_flush("SYNC"), await redis.script_exists(sha)]  # fmt: skip


def test_async_script_load_exists_flush(bridge: BridgeHandle) -> None:
    import asyncio

    assert asyncio.run(_async_scripts(bridge)) == [2, [True, False], True, [False]]


@pytest.mark.parametrize(
    ("command", "status", "pattern"),
    [
        (["NOSUCHCOMMAND", "x"], 400, r"^ERR unknown command '(?i:nosuchcommand)'"),
        (["GET"], 400, r"^ERR wrong number of arguments for 'get' command$"),
        (["SET", "{key}", "v", "EX", "soon"], 400, r"^ERR value is not an integer"),
        (["LPUSH", "{key}:s", "x"], 400, r"^WRONGTYPE Operation against a key"),
        (["SUBSCRIBE", "c"], 400, r"^ERR Command is not available: 'SUBSCRIBE'$"),
        (["GET", {"nested": 1}], 400, r"^ERR "),
        ([], 400, r"^ERR "),
    ],
)
def test_error_shapes_and_status(
    bridge: BridgeHandle, key: str, command: list[Any], status: int, pattern: str
) -> None:
    import re

    bridge.redis.set(f"{key}:s", "string")
    body = [part.replace("{key}", key) if isinstance(part, str) else part for part in command]
    answer = post(bridge, "/", body)
    assert answer.status_code == status
    assert set(answer.json()) == {"error"} and re.search(pattern, answer.json()["error"])
    if all(isinstance(part, str) for part in body) and body:
        # In a pipeline the same error fails its entry alone, with the same text.
        assert post(bridge, "/pipeline", [body]).json() == [answer.json()]
        with pytest.raises(UpstashError, match=pattern):
            client_for(bridge).execute(body)


def test_methods_and_auth_answer_as_upstash(bridge: BridgeHandle, key: str) -> None:
    auth = {"Authorization": f"Bearer {bridge.token}"}
    for method in ("DELETE", "PATCH", "OPTIONS"):
        answer = httpx.request(method, f"{bridge.url}/get/{key}", headers=auth)
        assert (answer.status_code, answer.json()) == (405, {"error": "Method Not Allowed"})
    put = httpx.put(f"{bridge.url}/set/{key}", content="via put", headers=auth)
    assert put.json() == {"result": "OK"} and bridge.redis.get(key) == b"via put"
    assert httpx.head(f"{bridge.url}/get/{key}", headers=auth).status_code == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        answer = httpx.post(bridge.url, json=["GET", key], headers=headers)
        assert (answer.status_code, answer.json()) == (401, {"error": "Unauthorized"})
        assert "upstash-sync-token" not in answer.headers


@pytest.mark.parametrize(
    ("command", "needs"),
    [
        (["HEXPIRE", "{key}", 10, "FIELDS", 1, "f"], "'HEXPIRE' needs Redis 7.4"),
        (["HGETDEL", "{key}", "FIELDS", 1, "f"], "'HGETDEL' needs Redis 8.0"),
        (["XACKDEL", "{key}", "g", "IDS", 1, "0-1"], "'XACKDEL' needs Redis 8.2"),
        (["BITOP", "DIFF", "{key}", "{key}:a", "{key}:b"], "'BITOP DIFF' needs Redis 8.2"),
        (["JSON.SET", "{key}", "$", "[]"], "'JSON.SET' needs Redis 8.0"),
    ],
)
def test_a_command_newer_than_the_local_redis_names_the_version(
    upstash: BridgeHandle, key: str, command: list[Any], needs: str
) -> None:
    """The machine Redis here is 7.0 and lacks them all. fakeredis (the fallback where no
    Redis runs) implements some itself: those must simply work through the bridge."""
    bridge = upstash
    body = [part.replace("{key}", key) if isinstance(part, str) else part for part in command]
    local = bridge._app.redis_version
    if local and tuple(int(p) for p in local.split(".")[:2]) >= (8, 2):
        pytest.fail(f"this test expects a Redis older than 8.2, found {local}")
    if bridge.embedded:
        try:
            bridge.redis.execute_command(*body)
        except Exception:
            pass  # fakeredis lacks it too: the bridge must say so, as below
        else:
            bridge.redis.delete(body[1], f"{key}:a", f"{key}:b")
            answer = post(bridge, "/", body)
            assert answer.status_code == 200, answer.text
            return
    answer = post(bridge, "/", body)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error.startswith(f"ERR {needs} or later; the local Redis behind the Upstash bridge")
    assert (local or "embedded fakeredis") in error
    assert post(bridge, "/pipeline", [body]).json()[0]["error"] == error


def test_parity_counts_tests_for_a_newer_redis_apart(tmp_path: Path) -> None:
    """`make parity`'s figure: a failure that is the bridge's "needs Redis" error counts as a
    test the local Redis cannot answer, any other failure or error as a failure."""
    report = tmp_path / "report.xml"
    report.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="t.a" name="ok"/>'
        '<testcase classname="t.a" name="skip"><skipped message="s"/></testcase>'
        '<testcase classname="t.b" name="hexpire"><failure message="UpstashError: ERR '
        "'HEXPIRE' needs Redis 7.4 or later\">...</failure></testcase>"
        '<testcase classname="t.b" name="wrong"><failure message="assert 30 == 5"/></testcase>'
        '<testcase classname="t.c" name="setup"><error message="fixture">x</error></testcase>'
        "</testsuite></testsuites>"
    )
    counts, failed = summarize(report)
    assert counts == {"passed": 1, "skipped": 1, "newer": 1, "failed": 2}
    assert failed == ["t.b::wrong", "t.c::setup"]
