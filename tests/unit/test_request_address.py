"""The caller's address: counted from the right of X-Forwarded-For, as far as proxies are trusted."""

from __future__ import annotations

import pytest

from shared.request import _safe_headers, client_address

PEER = "10.0.0.7"


@pytest.mark.parametrize(
    ("forwarded_for", "hops", "address"),
    [
        # no trusted proxy: the socket's peer, whatever the header says
        ("198.51.100.1", 0, PEER),
        (None, 0, PEER),
        # one proxy (Cloud Run): it appended the address it saw, the last entry
        ("198.51.100.1", 1, "198.51.100.1"),
        ("6.6.6.6, 198.51.100.1", 1, "198.51.100.1"),  # a spoofed entry on the left
        ("6.6.6.6,7.7.7.7,198.51.100.1", 1, "198.51.100.1"),
        (" 6.6.6.6 ,  198.51.100.1 ", 1, "198.51.100.1"),
        ("6.6.6.6, 198.51.100.1, ", 1, "198.51.100.1"),  # empty entries are no address
        # two proxies: the entry the outer one saw, second from the right
        ("6.6.6.6, 198.51.100.1, 10.1.1.1", 2, "198.51.100.1"),
        ("198.51.100.1, 10.1.1.1", 2, "198.51.100.1"),
        ("2001:db8::1, 10.1.1.1", 2, "2001:db8::1"),
        # fewer entries than trusted hops: the header is not what the proxies would have sent
        ("198.51.100.1", 2, PEER),
        ("", 1, PEER),
        (" , ", 1, PEER),
        (None, 1, PEER),
        (None, 3, PEER),
    ],
)
def test_client_address(forwarded_for: str | None, hops: int, address: str) -> None:
    assert client_address(forwarded_for, PEER, hops) == address


def test_no_peer_and_no_usable_header_is_unknown() -> None:
    assert client_address(None, None, 0) == "unknown"
    assert client_address("198.51.100.1", None, 2) == "unknown"
    assert client_address("198.51.100.1", "", 0) == "unknown"
    assert client_address("198.51.100.1", None, 1) == "198.51.100.1"


def test_a_caller_cannot_choose_its_address_by_sending_more_entries() -> None:
    real = "198.51.100.1"
    for spoofed in ("1.1.1.1", "1.1.1.1, 2.2.2.2", "1.1.1.1, 2.2.2.2, 3.3.3.3, 4.4.4.4"):
        assert client_address(f"{spoofed}, {real}", PEER, 1) == real
        assert client_address(f"{spoofed}, {real}, 10.1.1.1", PEER, 2) == real


def test_the_headers_sql_sees_leave_out_credentials() -> None:
    headers = {"Authorization": "Bearer t", "ApiKey": "k", "Cookie": "c", "X-Request-Id": "r",
               "Content-Type": "application/json"}  # fmt: skip
    assert _safe_headers(headers) == {"x-request-id": "r", "content-type": "application/json"}
