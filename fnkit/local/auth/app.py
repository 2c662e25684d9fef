"""The local Auth's WSGI app: the API gateway's key check, routing, and the error boundary.

In front of GoTrue, Supabase's gateway refuses any request without a valid `apikey` (header
or query parameter) with 401 `{"message": ...}` before GoTrue sees it, except the routes a
browser reaches from a link (`/verify`, `/callback`, `/authorize`) and the JWKS. Then each
route module's handlers run with a `Ctx`; an `AuthError` becomes GoTrue's error body, and
anything unexpected is logged here and answered 500 `unexpected_failure`, never a traceback.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from fnkit.local import tokens
from fnkit.local.auth.errors import AuthError, OAuthError, json_response, render_error
from fnkit.local.auth.mail import Inbox
from fnkit.local.auth.ratelimit import RateLimiter
from fnkit.local.config import LocalConfig

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["Ctx", "Handler", "create_app"]

_NUL_MESSAGE = "Text may not contain NUL characters or lone surrogates"
OPEN_PATHS = ("/verify", "/callback", "/authorize", "/.well-known/jwks.json")
MAX_BODY = 1 << 20  # GoTrue's limitRequestBody


@dataclass
class Ctx:
    """One request, with what every handler needs."""

    config: LocalConfig
    request: Request
    limiter: RateLimiter
    inbox: Inbox
    _body: dict[str, Any] | None = field(default=None, repr=False)

    def body(self) -> dict[str, Any]:
        """The JSON body (empty when none), or GoTrue's 400 `bad_json`."""
        if self._body is None:
            raw = self.request.get_data(cache=True)
            if not raw.strip():
                self._body = {}
            else:
                try:
                    parsed = json.loads(raw, parse_constant=_no_constant)
                except (ValueError, RecursionError) as exc:  # RecursionError: deep nesting
                    raise AuthError(
                        400, "bad_json", "Could not parse request body as JSON: invalid JSON"
                    ) from exc
                if not isinstance(parsed, dict):
                    raise AuthError(
                        400, "bad_json", "Could not parse request body as JSON: not an object"
                    )
                if _holds_bad_text(parsed):
                    # Postgres text and jsonb cannot hold NUL: refused here, never a 500 there.
                    raise AuthError(400, "validation_failed", _NUL_MESSAGE)
                self._body = parsed
        return self._body

    def text(self, name: str) -> str:
        value = self.body().get(name)
        return value if isinstance(value, str) else ""

    @property
    def ip(self) -> str:
        """The client address: the last X-Forwarded-For hop, the one the gateway in front
        appended (the ones before it are the client's to write), else the peer."""
        return _last_hop(self.request.headers.get("X-Forwarded-For")) or (
            self.request.remote_addr or "127.0.0.1"
        )

    @property
    def user_agent(self) -> str | None:
        return self.request.headers.get("User-Agent")

    def limit(self, name: str) -> None:
        """GoTrue's performRateLimiting: keyed by the address in the rate-limit header (the
        platform's proxy sets it; `extra["auth_rate_limit_header"]`, X-Forwarded-For by
        default). A request without it is not limited, as GoTrue lets it through."""
        header = self.config.extra.get("auth_rate_limit_header", "X-Forwarded-For")
        address = _last_hop(self.request.headers.get(header))
        if address:
            self.limiter.check(name, address)


Handler = Callable[..., Response]


def _last_hop(forwarded: str | None) -> str:
    """The last address of an X-Forwarded-For list: a proxy appends the peer it saw, so only
    the last entry is not the client's own word (as tollbooth reads it behind GoTrue)."""
    return (forwarded or "").rsplit(",", 1)[-1].strip()


def _no_constant(name: str) -> Any:
    """NaN and Infinity are no JSON (Go's decoder refuses them; Python's would take them)."""
    raise ValueError(f"{name} is not JSON")


def _holds_bad_text(value: Any) -> bool:
    """Whether a NUL or a lone UTF-16 surrogate (`"\\ud800"`, which no UTF-8 text can hold) is
    in any key or string of a parsed JSON value (walked without recursion: the value may be
    nested as deep as the parser allows)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _routes() -> list[tuple[str, list[str], Handler]]:
    from fnkit.local.auth import (
        routes_account,
        routes_admin,
        routes_email,
        routes_links,
        routes_mfa,
        routes_user,
    )

    return [
        *routes_account.ROUTES,
        *routes_user.ROUTES,
        *routes_email.ROUTES,
        *routes_admin.ROUTES,
        *routes_links.ROUTES,
        *routes_mfa.ROUTES,
    ]


def _role_token(config: LocalConfig, key: str) -> bool:
    """A JWT of the anon or service role signed by this project: what the gateway hands the
    service in place of a publishable or secret key (`fnkit.local.gateway.ApiKeys`)."""
    try:
        claims = tokens.verify(config, key)
    except tokens.InvalidToken:
        return False
    return claims.get("role") in ("anon", "service_role")


def _gateway_refusal(config: LocalConfig, request: Request) -> Response | None:
    """What Supabase's API gateway answers for a missing or unknown API key.

    `extra["auth_gateway"] = "off"` serves GoTrue bare, as supabase-py's own test suite
    runs it (no gateway, no API key)."""
    if config.extra.get("auth_gateway") == "off":
        return None
    if request.path in OPEN_PATHS or request.method == "OPTIONS":
        return None
    key = request.headers.get("apikey") or request.args.get("apikey")
    if not key:
        return json_response(
            {
                "message": "No API key found in request",
                "hint": "No `apikey` request header or url param was found.",
            },
            401,
        )
    if key not in (config.anon_key, config.service_role_key) and not _role_token(config, key):
        return json_response(
            {
                "message": "Invalid API key",
                "hint": "Double check your Supabase `anon` or `service_role` API key.",
            },
            401,
        )
    return None


def create_app(config: LocalConfig) -> Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]]:
    """The Auth service as a WSGI app, seeing paths without the `/auth/v1` prefix."""
    routes = _routes()
    url_map = Map(
        [
            Rule(path, methods=methods, endpoint=index)
            for index, (path, methods, _) in enumerate(routes)
        ],
        strict_slashes=False,
        merge_slashes=False,
    )
    limiter = RateLimiter(config.extra)
    inbox = Inbox(config.data_dir / "inbox")

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        request.max_content_length = MAX_BODY
        response = _gateway_refusal(config, request) or _dispatch(request)
        return response(environ, start_response)

    def _dispatch(request: Request) -> Response:
        ctx = Ctx(config, request, limiter, inbox)
        try:
            endpoint, args = url_map.bind_to_environ(request.environ).match()
            return routes[int(endpoint)][2](ctx, **args)
        except (AuthError, OAuthError) as exc:
            return render_error(request, exc)
        except MethodNotAllowed:
            return Response(status=405)
        except psycopg.DataError:  # NUL or an unencodable character from the query string
            return render_error(request, AuthError(400, "validation_failed", _NUL_MESSAGE))
        except NotFound:
            return render_error(request, AuthError(404, "", "Not Found"))
        except HTTPException as exc:
            status = exc.code or 400
            return render_error(request, AuthError(status, "", exc.description or "Bad Request"))
        except Exception:
            print("local auth: unexpected failure\n" + traceback.format_exc(), file=sys.stderr)
            return render_error(request, AuthError(500, "unexpected_failure", "Unexpected failure"))

    return app
