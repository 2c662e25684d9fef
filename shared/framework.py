"""How the runtime plugs into functions-framework, the server that calls it in production.

functions-framework mounts the function at `/<path:path>`, whose rule matches no newline, and
answers `/robots.txt` itself: werkzeug raises 404 before the handler is called, and Flask
would answer with its HTML page. While functions-framework imports the function's module,
inside its app's context, `functions_framework.errorhandler` is that app's; the runtime then
sends those requests through the function's own `handle` (request id, log line, an answer in
the envelope). Anywhere else (the dev server, which routes the same way itself; tests that
import several functions) nothing is registered.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import flask


def answer_unroutable_requests(handle: Callable[[flask.Request], flask.Response]) -> bool:
    """Register `handle` for the server's own 404 and 405; True when registered."""
    framework = sys.modules.get("functions_framework")
    if framework is None or not flask.has_app_context():
        return False
    register = framework.errorhandler
    app = flask.current_app._get_current_object()  # type: ignore[attr-defined]
    if getattr(register, "__self__", None) is not app:
        return False  # not functions-framework importing this module
    from werkzeug.exceptions import MethodNotAllowed, NotFound

    for refused in (NotFound, MethodNotAllowed):
        register(refused)(lambda _exc: handle(flask.request))
    return True
