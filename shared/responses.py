"""A `Result` (or an error) becomes the HTTP response: body, status and headers.

One place decides every byte a caller receives: the envelope or the route's own answer
format, the runtime's headers (request id, CORS, `Cache-Control`, `Server-Timing`), and the
refusal of a header a handler set that could split the response. A handler's value that JSON
or HTTP cannot carry becomes a logged 500, never a traceback.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import flask
from werkzeug.datastructures import Headers
from werkzeug.http import remove_entity_headers

from shared.envelope import Result, dumpb, error_body, success_body
from shared.errors import ApiError, Internal
from shared.request import Request


class _Response(flask.Response):
    """No default Content-Type: a 204 has none, everything else sets application/json.

    `get_wsgi_headers` is werkzeug's, minus the second validation of every header: werkzeug
    copies the headers through the validating `Headers` constructor before each response is
    sent (~6 µs for our ~10 headers), though they were checked when this response was built.
    What werkzeug would change for our bodies (always bytes, so `set_data` already set
    Content-Length) is done here: no Content-Length for 1xx and 204, no entity headers for
    304. (A relative
    `Location` stays relative, as werkzeug leaves it by default since 2.1.)
    """

    default_mimetype = None
    # `render` writes Content-Length with the other headers: werkzeug's `set_data` would set
    # it through `Headers.__setitem__`, validating it again (~1 µs), at the same place (last).
    automatically_set_content_length = False

    def get_wsgi_headers(self, environ: Any) -> Headers:
        items = list(self.headers._list)  # type: ignore[attr-defined]  # see trusted_headers
        status = self.status_code
        if 100 <= status < 200 or status == 204:
            items = [(k, v) for k, v in items if k.lower() != "content-length"]
        elif status == 304:
            remove_entity_headers(items)
        return _trusted_items(items)


def render(
    request: Request,
    result: Result,
    error: ApiError | None,
    cors_headers: Mapping[str, str],
    head: bool,
    started: float,
    on_unencodable: Callable[[BaseException, ApiError], None],
) -> flask.Response:
    """The response for `result` (or `error`); `on_unencodable` logs what could not be sent."""
    try:
        payload = encode(request, result, error)
        refuse_line_breaks(result.headers)  # the handler's, the steps' and an error's own
        refuse_line_breaks(request.response_headers)
        if error is not None:
            refuse_line_breaks(error.headers)
    except (TypeError, ValueError) as exc:  # a handler returned what HTTP cannot carry
        error = Internal()
        on_unencodable(exc, error)
        result = Result(status=error.status)
        payload = dumpb(error_body(error, request.request_id))
        request.response_headers.clear()
    headers: dict[str, str] = {
        **request.response_headers,
        **result.headers,
        **cors_headers,
        "X-Request-Id": request.request_id,
        "Cache-Control": "no-store",
        "Server-Timing": server_timing(request, started),
    }
    if error is not None:
        headers.update(error.headers)
    if payload is not None:
        headers["Content-Type"] = "application/json"
    body = b"" if head or payload is None else payload
    headers["Content-Length"] = str(len(body))
    return _Response(body, status=result.status, headers=trusted_headers(headers))


def encode(request: Request, result: Result, error: ApiError | None) -> bytes | None:
    """The body: an error in the route's format, nothing for 204, else envelope or document."""
    if error is not None:
        answer = request.route.answer if request.route is not None else "envelope"
        return dumpb(error_body(error, request.request_id, answer))
    if result.status == 204:
        return None
    if result.answer != "envelope":
        return dumpb(result.data)
    return dumpb(success_body(result, request.request_id))


def refuse_line_breaks(headers: dict[str, str]) -> None:
    """A header a handler chose must not be able to split the response (CR/LF)."""
    for name, value in headers.items():
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name:
            raise ValueError(f"header {name!r} holds a line break")


def trusted_headers(headers: dict[str, str]) -> Headers:
    """A werkzeug `Headers` without its per-header re-validation (~2 µs a header).

    Every value here is built by the runtime from validated parts (request id, allow-listed
    origin, numbers) or passed `refuse_line_breaks`; werkzeug would repeat the same check on
    each of ~10 headers of every response. This writes `Headers._list`, werkzeug's private
    storage: werkzeug is pinned by requirements.lock, and tests/unit/test_responses.py checks
    that the result equals what the public constructor builds, so an upgrade that changes the
    storage fails there, not in production.
    """
    return _trusted_items(list(headers.items()))


def _trusted_items(items: list[tuple[str, str]]) -> Headers:
    trusted = Headers()
    trusted._list = items  # type: ignore[attr-defined]
    return trusted


def server_timing(request: Request, started: float) -> str:
    parts = [f"total;dur={(time.perf_counter() - started) * 1000:.2f}"]
    tx = request.transaction
    if tx is not None and tx.elapsed:
        parts.append(f"db;dur={tx.elapsed * 1000:.2f}")
    return ", ".join(parts)
