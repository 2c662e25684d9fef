"""The cold-start bench's first calls for hooks and housekeeping are real authenticated calls:
the served functions answer them 2xx, and refuse them with the credential taken away."""

from __future__ import annotations

import dataclasses

import httpx
import pytest

from fnkit.bench.machine_calls import CALLS
from tests.fixtures.server import Served


@pytest.mark.parametrize("name", sorted(CALLS))
def test_each_machine_call_is_answered_2xx(served: Served, name: str) -> None:
    with httpx.Client(timeout=30) as client:
        response = CALLS[name].send(client, f"{served.url}/functions/v1/{name}")
    assert 200 <= response.status_code < 300, response.text[:300]
    if name == "hooks":
        assert "memberships" in response.json()["claims"]


@pytest.mark.parametrize("name", sorted(CALLS))
def test_without_its_credential_the_call_is_refused(served: Served, name: str) -> None:
    kept = {"Content-Type": "application/json"} if name == "hooks" else {}
    bare = dataclasses.replace(CALLS[name], headers=lambda _content: kept)
    with httpx.Client(timeout=30) as client:
        response = bare.send(client, f"{served.url}/functions/v1/{name}")
    assert response.status_code == 401, response.text[:300]
