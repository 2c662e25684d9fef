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


def create_app(functions_dirs: Path | list[Path]) -> flask.Flask:
    """One Flask app dispatching to every function found in the given folders."""
    dirs = functions_dirs if isinstance(functions_dirs, list) else [functions_dirs]
    handlers: dict[str, Handler] = {
        name: load(name, path).handler
        for directory in dirs
        for name, path in discover(directory).items()
    }
    app = flask.Flask("fnkit-dev")

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]

    @app.route("/functions/v1/<name>", methods=methods, strict_slashes=False)
    @app.route("/functions/v1/<name>/<path:rest>", methods=methods)
    def dispatch(name: str, rest: str = "") -> Any:
        handler = handlers.get(name)
        if handler is None:
            return flask.jsonify(
                success=False,
                error={"code": "NOT_FOUND", "message": f"No function named {name}"},
                meta={"functions": sorted(handlers)},
            ), 404
        return handler(flask.request)

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
