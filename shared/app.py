"""`App`: one cloud function: its routes, its pipeline, and its entry point.

A function file declares routes with decorators and exposes `handler = app.handler`, the
entry point functions-framework calls with a Flask request. The work is done elsewhere, one
idea a module: `routing` finds the route, `pipeline` runs the steps, `error_map` turns
exceptions into answers, `responses` writes the HTTP response, `logs` the line about it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import flask

from shared import tracecontext
from shared.auth import AuthLevel, TokenVerifier
from shared.callers import Caller
from shared.cors import CorsPolicy
from shared.envelope import Answer, Result
from shared.error_map import ErrorMap
from shared.errors import ApiError
from shared.framework import answer_unroutable_requests
from shared.idempotency import idempotency_step
from shared.logs import log_exception, log_request
from shared.pipeline import (
    BODY_METHODS,
    Middleware,
    Next,
    auth_step,
    call_endpoint,
    compose,
    rate_limit_step,
    read_body,
    transaction_step,
    validation_step,
)
from shared.ratelimit import DEFAULT, RateLimiter, RatePolicy
from shared.request import Request, client_address
from shared.request_id import accept_or_mint
from shared.responses import render
from shared.routing import Preflight, Route, Router, function_relative
from shared.settings import Settings, SettingsError, get_settings
from shared.signatures import resolve_models
from shared.tracecontext import REQUEST_KEY

F = TypeVar("F", bound=Callable[..., Any])
_WRITE_METHODS = {"POST", "PUT", "PATCH"}


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
        tracecontext.activate()  # imports OpenTelemetry only when the OTEL_* variables ask
        self.name = name
        self.title = title or name
        self.description = description
        self.router = Router()
        # What exceptions mean to callers; functions add their constraints (`app.errors`).
        self.errors = ErrorMap()
        self.cors = CorsPolicy(self.settings.allowed_origins)
        self.verifier = TokenVerifier(self.settings)
        self.limiter = RateLimiter(self.settings, name)
        self._extra_middleware = tuple(middleware)
        # The pipeline composed per route (keyed by the route's id: routes live as long as
        # the app), with only the steps that route can need.
        self._chains: dict[int, Next] = {}
        self._openapi: dict[str, Any] | None = None
        self.handler = self._entry_point()
        answer_unroutable_requests(self.handle)
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
            self.router.add(
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
            self._chains.clear()
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

    @property
    def routes(self) -> list[Route]:
        return self.router.routes

    def handle(self, http: flask.Request) -> flask.Response:
        """Serve one request: route, pipeline, error mapping, response, log line."""
        telemetry = tracecontext.active
        if telemetry is not None:  # off: this is the one check a request pays
            response: flask.Response = telemetry.serve(self.name, http, self._serve)
            return response
        return self._serve(http)

    def _serve(self, http: flask.Request) -> flask.Response:
        started = time.perf_counter()
        environ = http.environ
        hops = self.settings.trusted_proxy_hops
        request = environ[REQUEST_KEY] = Request(
            function=self.name,
            method=http.method.upper(),
            path=function_relative(http.path, self.name),
            headers=http.headers,
            query_string=http.query_string,
            # Headers straight from the environ, as `Request.header` reads them.
            request_id=accept_or_mint(environ.get("HTTP_X_REQUEST_ID")),
            client_ip=client_address(
                environ.get("HTTP_X_FORWARDED_FOR") if hops else None,
                http.remote_addr,
                hops,
            ),
            settings=self.settings,
            environ=environ,
        )
        head = request.method == "HEAD"
        if head:
            request.method = "GET"
        origin = request.header("Origin")
        error: ApiError | None = None
        try:
            result = self._dispatch(request, http)
        except Preflight as preflight:
            result = Result(
                status=204,
                headers={
                    "Allow": ", ".join(preflight.allowed),
                    **self.cors.preflight_headers(origin, preflight.allowed),
                },
            )
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            error = self.errors.map(exc)
            result = Result(status=200 if error.hook_refusal else error.status)
            if error.status >= 500:
                log_exception(self.name, request, exc, error)
        response = render(
            request,
            result,
            error,
            self.cors.headers_for(origin),
            head,
            started,
            lambda exc, err: log_exception(self.name, request, exc, err),
        )
        log_request(self.name, request, response.status_code, error, started, environ)
        return response

    def _dispatch(self, request: Request, http: flask.Request) -> Result:
        route, request.path_params = self.router.resolve(request.method, request.path)
        request.route = route
        if request.method in BODY_METHODS:  # size, type and JSON before anything costly
            read_body(request, http.stream.read, self.settings.max_body_bytes)
        chain = self._chains.get(id(route))
        if chain is None:  # composed once per route, at its first request
            chain = self._chains[id(route)] = compose(self._steps(route), call_endpoint)
        return chain(request)

    def _steps(self, route: Route) -> list[Middleware]:
        """The pipeline's steps for `route`, leaving out those that would do nothing on it
        (each one also checks for itself): no limit, no model, not idempotent."""
        steps: list[Middleware] = [auth_step(self.verifier)]
        if route.rate is not None:
            steps.append(rate_limit_step(self.limiter))
        if route.path_model is not None or route.query is not None or route.body is not None:
            steps.append(validation_step)
        steps += [*self._extra_middleware, transaction_step]
        if route.idempotent:
            steps.append(idempotency_step)
        return steps

    def _entry_point(self) -> Callable[[flask.Request], flask.Response]:
        """functions-framework wants a plain function, not a bound method."""

        def handler(request: flask.Request) -> flask.Response:
            return self.handle(request)

        handler.__doc__ = f"Entry point of the {self.name} function."
        return handler

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document built from the route declarations (built once)."""
        if self._openapi is None:
            from shared.openapi import build_document

            self._openapi = build_document(self)
        return self._openapi

    def _openapi_endpoint(self, request: Request) -> Any:
        return self.openapi()


def _first_line(doc: str | None) -> str | None:
    return doc.strip().splitlines()[0] if doc and doc.strip() else None
