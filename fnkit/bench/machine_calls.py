"""The first authenticated call of the functions no user calls, for their cold starts.

`hooks` answers Supabase Auth, which signs each call (Standard Webhooks, `AUTH_HOOK_SECRETS`);
`housekeeping` answers the scheduler, which presents the project's secret key. Their cold start
is timed to the first 2xx of such a call, as a user function's is to its first call with a
user's token, so every row of the cold-start table is an authenticated first answer. Each call
is built as it is sent: a hook's signature carries the time it was made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx

from fnkit.devenv import DEV_AUTH_HOOK_SECRET, DEV_SECRET_KEY
from fnkit.hook_signing import auth_hook_headers
from fnkit.schedules import service_headers


@dataclass(frozen=True)
class MachineCall:
    """A function's first call as its machine caller makes it."""

    credential: str  # named in the report instead of "HS256"
    method: str
    path: str
    body: Callable[[], bytes]
    headers: Callable[[bytes], dict[str, str]]
    settings: dict[str, str]  # what the function needs to check the caller

    def send(self, client: httpx.Client, base_url: str) -> httpx.Response:
        content = self.body()
        return client.request(
            self.method, base_url + self.path, content=content, headers=self.headers(content)
        )


def _hook_event() -> bytes:
    from fnkit.bench.hooks import event
    from fnkit.bench.services import OWNER

    return event(OWNER)


CALLS = {
    "hooks": MachineCall(
        credential="Supabase Auth's signature",
        method="POST",
        path="/custom-access-token",
        body=_hook_event,
        headers=lambda content: {
            **auth_hook_headers(content, DEV_AUTH_HOOK_SECRET),
            "Content-Type": "application/json",
        },
        settings={"AUTH_HOOK_SECRETS": DEV_AUTH_HOOK_SECRET},
    ),
    "housekeeping": MachineCall(
        credential="the secret key",
        method="POST",
        path="/idempotency-keys/expire",
        body=lambda: b"",
        headers=lambda _content: service_headers(DEV_SECRET_KEY),
        settings={"SUPABASE_SECRET_KEY": DEV_SECRET_KEY},
    ),
}
