"""Serve every function under one port, at the same paths as Supabase's functions gateway.

`/functions/v1/<name>/...` reaches `functions/<name>/main.py`'s `handler`, so supabase-py's
`functions.invoke("<name>")` works against it unchanged.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import flask
import werkzeug.exceptions
import werkzeug.routing

from shared.envelope import dumpb, error_body
from shared.errors import NotFound
from shared.request_id import accept_or_mint

Handler = Callable[[flask.Request], Any]


def discover(functions_dir: Path) -> dict[str, Path]:
    """Function name → its main.py, for every folder that has one."""
    return {p.parent.name: p for p in sorted(functions_dir.glob("*/main.py"))}


def load(name: str, path: Path) -> ModuleType:
    """Import a function's main.py under a unique module name (they are all called main)."""
    module_name = f"fnkit_functions_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def not_found(message: str) -> flask.Response:
    """The dev server's own 404 (no such function), in the functions' envelope."""
    request_id = accept_or_mint(flask.request.headers.get("X-Request-Id"))
    body = dumpb(error_body(NotFound(message), request_id))
    return flask.Response(body, 404, {"X-Request-Id": request_id}, content_type="application/json")


def create_app(functions_dirs: Path | list[Path]) -> flask.Flask:
    """One Flask app dispatching to every function found in the given folders."""
    dirs = functions_dirs if isinstance(functions_dirs, list) else [functions_dirs]
    handlers: dict[str, Handler] = {
        name: load(name, path).handler
        for directory in dirs
        for name, path in discover(directory).items()
    }
    app = flask.Flask("fnkit-dev")

    def dispatch(name: str, rest: str = "") -> Any:
        handler = handlers.get(name)
        if handler is None:
            known = ", ".join(sorted(handlers))
            return not_found(f"No function named {name!r}; served: {known}")
        return handler(flask.request)

    # As functions-framework does: rules without a method list, so every method (TRACE,
    # PROPFIND, ...) reaches the function, which answers 405 in its envelope.
    Rule = werkzeug.routing.Rule
    app.url_map.add(Rule("/functions/v1/<name>", endpoint="dispatch", strict_slashes=False))
    app.url_map.add(Rule("/functions/v1/<name>/<path:rest>", endpoint="dispatch"))
    app.view_functions["dispatch"] = dispatch

    @app.errorhandler(werkzeug.exceptions.NotFound)
    @app.errorhandler(werkzeug.exceptions.MethodNotAllowed)
    def unroutable(exc: werkzeug.exceptions.HTTPException) -> Any:
        """A path werkzeug's rules cannot match (a newline in it) still reaches its function,
        as under functions-framework, where the runtime registers the same handler."""
        path = flask.request.path
        if path.startswith("/functions/v1/"):
            return dispatch(path[len("/functions/v1/") :].split("/", 1)[0])
        return not_found(f"Nothing at {path!r}; functions are under /functions/v1/<name>")

    @app.get("/")
    def index() -> Any:
        return flask.jsonify(
            functions={name: f"/functions/v1/{name}" for name in sorted(handlers)},
            openapi={name: f"/functions/v1/{name}/openapi.json" for name in sorted(handlers)},
            docs="/docs",
        )

    from fnkit.docs_page import register as register_docs

    register_docs(app, handlers)  # the API reference at /docs
    app.config["HANDLERS"] = handlers
    return app
