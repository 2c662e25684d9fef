"""Helpers for the local Auth tests (no tests here): clients, a second Auth, stub hooks.

Most tests use the session's local Auth (`fake_auth`, hooks pointed at the served `hooks`
function). Tests that need other settings (confirmations on, tight rate limits, a hook that
misbehaves) start a second instance of the same app on its own port, on the same database,
with a copy of the configuration: nothing of the shared instance changes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
from supabase import Client, ClientOptions, create_client
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from fnkit.devenv import DEV_ANON_KEY, DEV_SERVICE_ROLE_KEY
from fnkit.local.auth import create_app
from fnkit.local.auth.mail import Inbox
from fnkit.local.config import LocalConfig

PASSWORD = "correct-horse-battery"
API_2024 = {"X-Supabase-Api-Version": "2024-01-01"}


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def client(url: str, key: str = DEV_ANON_KEY, **headers: str) -> Client:
    """supabase-py as an app uses it, without background refresh or storage."""
    options = ClientOptions(auto_refresh_token=False, persist_session=False, headers=headers)
    return create_client(url, key, options=options)


def proxied() -> dict[str, str]:
    """The header Supabase's proxy adds with the client's address, which GoTrue's rate limits
    key on (a request without it is not limited): a fresh address per call."""
    number = uuid.uuid4().int
    return {"X-Forwarded-For": f"198.18.{number % 256}.{number // 256 % 256}"}


def admin_client(url: str) -> Client:
    return client(url, DEV_SERVICE_ROLE_KEY)


def raw(url: str, key: str = DEV_ANON_KEY, **headers: str) -> httpx.Client:
    """httpx at `<url>/auth/v1` with the apikey header, as the gateway wants it."""
    return httpx.Client(base_url=f"{url}/auth/v1", headers={"apikey": key, **headers}, timeout=30)


def claims_of(token: str) -> dict[str, Any]:
    """A token's claims, unverified (the tests that verify do so explicitly)."""
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


def inbox(config: LocalConfig) -> Inbox:
    return Inbox(config.data_dir / "inbox")


def last_mail(config: LocalConfig, to: str, kind: str | None = None) -> dict[str, Any]:
    found = [m for m in inbox(config).messages(to) if kind is None or m["kind"] == kind]
    assert found, f"no {kind or ''} mail to {to}"
    return found[-1]


@contextlib.contextmanager
def serve(app: Any) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


@contextlib.contextmanager
def second_auth(config: LocalConfig, **changes: Any) -> Iterator[tuple[str, LocalConfig]]:
    """Another local Auth on the same database with `changes` to a copy of the config;
    yields (base URL, its config). The copy's issuer is its own base URL."""
    holder: dict[str, Any] = {}

    def app(environ: Any, start_response: Any) -> Any:
        return holder["app"](environ, start_response)

    with serve(app) as url:
        extra = {**config.extra, **changes.pop("extra", {})}
        copy = dataclasses.replace(config, base_url=url, extra=extra, **changes)
        nothing = Response("not found", status=404)
        holder["app"] = DispatcherMiddleware(nothing, {"/auth/v1": create_app(copy)})
        yield url, copy


@contextlib.contextmanager
def stub_hook(answer: Callable[[Request], Response]) -> Iterator[tuple[str, list[Any]]]:
    """A hook endpoint answering with `answer`; yields its URL and the bodies it received."""
    received: list[Any] = []

    def app(environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        received.append((dict(request.headers), json.loads(request.get_data() or b"null")))
        return answer(request)(environ, start_response)

    with serve(app) as url:
        yield f"{url}/hook", received


def json_answer(body: Any, status: int = 200) -> Callable[[Request], Response]:
    return lambda _request: Response(json.dumps(body), status, content_type="application/json")


def slow_answer(seconds: float) -> Callable[[Request], Response]:
    def answer(_request: Request) -> Response:
        time.sleep(seconds)
        return Response("{}", content_type="application/json")

    return answer
