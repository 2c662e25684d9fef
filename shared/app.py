"""`App`: one cloud function's routes and the request pipeline around them.

A function file declares routes with decorators and exposes `handler = app.handler`, the
entry point functions-framework calls with a Flask request.
"""

from __future__ import annotations

import re
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import flask
from werkzeug.datastructures import Headers

from shared.auth import AuthLevel, TokenVerifier
from shared.callers import Caller
from shared.cors import CorsPolicy
from shared.envelope import Answer, Result, dumpb, error_body, success_body
from shared.error_map import ErrorMap, loggable
from shared.errors import (
    ApiError,
    Internal,
    MethodNotAllowed,
    NotFound,
)
from shared.idempotency import idempotency_step
from shared.logs import log, trace_field
from shared.pipeline import (
    Middleware,
    Reply,
    auth_step,
    body_step,
    call_endpoint,
    compose,
    rate_limit_step,
    transaction_step,
    validation_step,
)
from shared.ratelimit import DEFAULT, RateLimiter, RatePolicy
from shared.request import Request
from shared.request_id import accept_or_mint
from shared.routing import Route, function_relative
from shared.settings import Settings, SettingsError, get_settings
from shared.signatures import resolve_models

F = TypeVar("F", bound=Callable[..., Any])
_WRITE_METHODS = {"POST", "PUT", "PATCH"}
# No route holds a control character; a path with one (a decoded %0A, say) is no resource.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class App:
    """A function: a name, its routes, and the pipeline every route goes through."""

    def __init__(
        self,
        name: str,
        *,
        title: str | None = None,
        description: str | None = None,
        middleware: Sequence[Middleware] = (),
        settings: Settings | None = None,
    ) -> None:
        try:
            self.settings = settings or get_settings()
        except SettingsError as exc:
            raise SystemExit(f"{name}: {exc}") from None
        self.name = name
        self.title = title or name
        self.description = description
        self.routes: list[Route] = []
        # What exceptions mean to callers; functions add their constraints (`app.errors`).
        self.errors = ErrorMap()
        self.cors = CorsPolicy(self.settings.allowed_origins)
        self.verifier = TokenVerifier(self.settings)
        self.limiter = RateLimiter(self.settings, name)
        self._extra_middleware = tuple(middleware)
        self._chain: Callable[[Request], Reply] | None = None
        self._openapi: dict[str, Any] | None = None
        self.handler = self._entry_point()
        self._answer_unroutable_requests()
        self.route(
            "GET",
            "/openapi.json",
            auth="public",
            answer="raw",
            summary="This function's OpenAPI document",
        )(self._openapi_endpoint)

    # ---- declaring routes -------------------------------------------------------------

    def route(
        self,
        method: str,
        path: str,
        *,
        auth: AuthLevel | Caller | None = None,
        rate: RatePolicy | None = DEFAULT,
        path_model: Any = None,
        query: Any = None,
        body: Any = None,
        response: Any = None,
        status: int = 200,
        idempotent: bool | None = None,
        summary: str | None = None,
        description: str | None = None,
        answer: Answer = "envelope",
        single_statement: bool = False,
        schedule: Any = None,
    ) -> Callable[[F], F]:
        """Declare a route; the decorated function gets `(request, **models)`.

        `single_statement=True` promises that the handler's write is one SQL statement (reads
        may follow it): the write then commits with that statement, in one round trip.
        `auth=` takes a user level or a machine `Caller` (shared.callers); `answer=` says
        whether the route answers in the envelope, raw, or in an Auth hook's own format
        (`shared.envelope.Answer`).
        `schedule="*/30 * * * *"` (or a `shared.schedule.Schedule` with a time zone) makes it
        a scheduled route: only the scheduler may call it, one run at a time (see there).
        """

        def register(endpoint: F) -> F:
            handler: Callable[..., Any] = endpoint
            level: AuthLevel | Caller = auth or "user"
            limit, once, plan = rate, idempotent, None
            if schedule is not None:
                from shared.schedule import as_schedule, lock_key, locked
                from shared.scheduler_auth import Scheduler

                if auth is not None and not isinstance(auth, Scheduler):
                    raise ValueError(f"{method} {path}: a scheduled route's auth is the scheduler")
                plan, level, limit, once = as_schedule(schedule), Scheduler(), None, False
                handler = locked(lock_key(self.name, method.upper(), path), endpoint)
            models = resolve_models(
                f"{self.name}: {method.upper()} {path}",
                endpoint,
                {"path": path_model, "query": query, "body": body},
            )
            self.routes.append(
                Route(
                    method=method,
                    path=path,
                    endpoint=handler,
                    auth=level,
                    rate=limit,
                    path_model=models["path"],
                    query=models["query"],
                    body=models["body"],
                    response=response,
                    status=status,
                    idempotent=method.upper() in _WRITE_METHODS if once is None else once,
                    summary=summary or _first_line(endpoint.__doc__),
                    description=description or endpoint.__doc__,
                    answer=answer,
                    single_statement=single_statement,
                    schedule=plan,
                )
            )
            self._chain = None
            return endpoint

        return register

    def get(self, path: str, **options: Any) -> Callable[[F], F]:
        return self.route("GET", path, **options)

    def post(self, path: str, **options: Any) -> Callable[[F], F]:
        return self.route("POST", path, **options)

    def put(self, path: str, **options: Any) -> Callable[[F], F]:
        return self.route("PUT", path, **options)

    def patch(self, path: str, **options: Any) -> Callable[[F], F]:
        return self.route("PATCH", path, **options)

    def delete(self, path: str, **options: Any) -> Callable[[F], F]:
        return self.route("DELETE", path, **options)

    # ---- serving ------------------------------------------------------------------------

    def handle(self, raw: flask.Request) -> flask.Response:
        """Serve one request through the pipeline."""
        started = time.perf_counter()
        request_id = accept_or_mint(raw.headers.get("X-Request-Id"))
        origin = raw.headers.get("Origin")
        request = Request(
            function=self.name,
            method=raw.method.upper(),
            path=function_relative(raw.path, self.name),
            headers=raw.headers,
            args=raw.args,
            request_id=request_id,
            client_ip=self._client_ip(raw),
            settings=self.settings,
        )
        head = request.method == "HEAD"
        if head:
            request.method = "GET"
        error: ApiError | None = None
        try:
            reply = self._dispatch(request, raw)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            error = self.errors.map(exc)
            reply = Reply(result=Result(status=error.status), headers=dict(error.headers))
            if error.status >= 500:
                self._log_exception(request, exc, error)
        response = self._to_response(request, reply, error, origin, head, started)
        self._log_request(request, response.status_code, error, started, raw)
        return response

    def _dispatch(self, request: Request, raw: flask.Request) -> Reply:
        if _CONTROL.search(request.path):
            raise NotFound("No route for a path holding a control character")
        # The common case first: the first route of this method whose path matches.
        for route in self.routes:
            if route.method != request.method:
                continue
            params = route.match(request.path)
            if params is not None:
                request.route, request.path_params = route, params
                return self._pipeline(raw)(request)
        # No such route: 404, 405 with Allow, or a preflight's answer.
        matches = [
            (route, params)
            for route in self.routes
            if (params := route.match(request.path)) is not None
        ]
        if not matches:
            raise NotFound(f"No route for {request.path}")
        allowed = sorted(
            {route.method for route, _ in matches}
            | {"OPTIONS"}
            | ({"HEAD"} if any(r.method == "GET" for r, _ in matches) else set())
        )
        if request.method == "OPTIONS":
            origin = request.headers.get("Origin")
            return Reply(
                result=Result(status=204),
                headers={
                    "Allow": ", ".join(allowed),
                    **self.cors.preflight_headers(origin, allowed),
                },
            )
        raise MethodNotAllowed(allowed)

    def _pipeline(self, raw: flask.Request) -> Callable[[Request], Reply]:
        # The body reader is per request; everything else is composed once.
        if self._chain is None:
            self._chain = compose(
                [
                    auth_step(self.verifier),
                    rate_limit_step(self.limiter),
                    validation_step,
                    *self._extra_middleware,
                    transaction_step,
                    idempotency_step,
                ],
                call_endpoint,
            )
        chain = self._chain
        reader = body_step(lambda limit: raw.stream.read(limit), self.settings.max_body_bytes)
        return lambda request: reader(request, chain)

    def _entry_point(self) -> Callable[[flask.Request], flask.Response]:
        """functions-framework wants a plain function, not a bound method."""

        def handler(request: flask.Request) -> flask.Response:
            return self.handle(request)

        handler.__doc__ = f"Entry point of the {self.name} function."
        return handler

    def _answer_unroutable_requests(self) -> None:
        """Requests the server's own router refuses get our envelope too, not Flask's HTML.

        functions-framework mounts the function at `/<path:path>`, whose rule matches no
        newline, and answers `/robots.txt` itself: werkzeug raises 404 before the handler is
        called. While functions-framework imports the function's module, inside its app's
        context, `functions_framework.errorhandler` is that app's; the runtime then sends those
        requests through `handle` (request id, log line, 404 in the envelope). Anywhere else
        (the dev server, tests that import several functions) it registers nothing.
        """
        framework = sys.modules.get("functions_framework")
        if framework is None or not flask.has_app_context():
            return
        register = framework.errorhandler
        if getattr(register, "__self__", None) is not flask.current_app._get_current_object():  # type: ignore[attr-defined]
            return  # not functions-framework importing this module (another app, a test)
        from werkzeug.exceptions import MethodNotAllowed as RouterMethodNotAllowed
        from werkzeug.exceptions import NotFound as RouterNotFound

        for refused in (RouterNotFound, RouterMethodNotAllowed):
            register(refused)(lambda _exc: self.handle(flask.request))

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document built from the route declarations (built once)."""
        if self._openapi is None:
            from shared.openapi import build_document

            self._openapi = build_document(self)
        return self._openapi

    def _openapi_endpoint(self, request: Request) -> Any:
        return self.openapi()

    def _client_ip(self, raw: flask.Request) -> str:
        hops = self.settings.trusted_proxy_hops
        if hops:
            forwarded = [
                part.strip()
                for part in raw.headers.get("X-Forwarded-For", "").split(",")
                if part.strip()
            ]
            if len(forwarded) >= hops:
                return forwarded[-hops]
        return raw.remote_addr or "unknown"

    def _to_response(
        self,
        request: Request,
        reply: Reply,
        error: ApiError | None,
        origin: str | None,
        head: bool,
        started: float,
    ) -> flask.Response:
        result = reply.result
        try:
            payload = self._encode(request, reply, error)
            _refuse_line_breaks(result.headers)
            _refuse_line_breaks(reply.headers)
        except (TypeError, ValueError) as exc:  # a handler returned what HTTP cannot carry
            error = Internal()
            self._log_exception(request, exc, error)
            reply = Reply(result=Result(status=error.status))
            result = reply.result
            payload = dumpb(error_body(error, request.request_id))
        headers: dict[str, str] = {
            **request.response_headers,
            **result.headers,
            **reply.headers,
            **self.cors.headers_for(origin),
            "X-Request-Id": request.request_id,
            "Cache-Control": "no-store",
            "Server-Timing": _server_timing(request, started),
        }
        if error is not None:
            headers.update(error.headers)
        if payload is not None:
            headers["Content-Type"] = "application/json"
        body = b"" if head or payload is None else payload
        return _Response(body, status=result.status, headers=_trusted(headers))

    @staticmethod
    def _encode(request: Request, reply: Reply, error: ApiError | None) -> bytes | None:
        result = reply.result
        if error is not None:
            answer = request.route.answer if request.route is not None else "envelope"
            return dumpb(error_body(error, request.request_id, answer))
        if result.status == 204:
            return None
        if reply.answer != "envelope":
            return dumpb(result.data)
        return dumpb(success_body(result, request.request_id))

    def _log_request(
        self,
        request: Request,
        status: int,
        error: ApiError | None,
        started: float,
        raw: flask.Request,
    ) -> None:
        severity = "ERROR" if status >= 500 else "WARNING" if status >= 400 else "INFO"
        claims = request.claims
        log(
            severity,
            f"{request.method} {request.path} {status}",
            request_id=request.request_id,
            function=self.name,
            route=request.route.path if request.route else None,
            method=request.method,
            path=request.path,
            status=status,
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
            user=claims.sub if claims else None,
            error=error.code if error else None,
            trace=trace_field(
                raw.environ.get("HTTP_X_CLOUD_TRACE_CONTEXT"), raw.environ.get("HTTP_TRACEPARENT")
            ),
        )

    def _log_exception(self, request: Request, exc: BaseException, error: ApiError) -> None:
        log(
            "ERROR",
            f"{type(exc).__name__} while serving {request.method} {request.path}",
            request_id=request.request_id,
            function=self.name,
            error=error.code,
            exception=loggable(exc),
            stack="".join(traceback.format_tb(exc.__traceback__))
            if error.code == "INTERNAL"
            else None,
        )


class _Response(flask.Response):
    """No default Content-Type: a 204 has none, everything else sets application/json."""

    default_mimetype = None


def _refuse_line_breaks(headers: dict[str, str]) -> None:
    """A header a handler chose must not be able to split the response (CR/LF)."""
    for name, value in headers.items():
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name:
            raise ValueError(f"header {name!r} holds a line break")


def _trusted(headers: dict[str, str]) -> Headers:
    """A werkzeug `Headers` without its per-header re-validation (~2 µs a header).

    Every value here is built by the runtime from validated parts (request id, allow-listed
    origin, numbers) or passed `_refuse_line_breaks`; werkzeug would repeat the same check
    on each of ~10 headers of every response.
    """
    trusted = Headers()
    trusted._list = list(headers.items())  # type: ignore[attr-defined]
    return trusted


def _server_timing(request: Request, started: float) -> str:
    parts = [f"total;dur={(time.perf_counter() - started) * 1000:.2f}"]
    tx = request.transaction
    if tx is not None and tx.elapsed:
        parts.append(f"db;dur={tx.elapsed * 1000:.2f}")
    return ", ".join(parts)


def _first_line(doc: str | None) -> str | None:
    return doc.strip().splitlines()[0] if doc and doc.strip() else None
