"""The API reference at `/docs` of `make dev`: every function's OpenAPI document in one page.

Dev tooling, never bundled. The page is a small hand-written HTML, CSS and JS file under
`fnkit/static/` (no CDN, no framework: it works offline and loads in milliseconds). It reads
`/docs/openapi.json`, the functions' documents combined into one, lists every function and
route with its auth level, rate limit, parameters and body schema, and lets a user paste a
token (`fnkit token --sub <uuid>`) and try a route, showing the envelope it answers with.
Machine routes (Auth hooks, database webhooks) are tried with the credentials Supabase would
send, made by the dev server (`fnkit/docs_signing.py`, which says why there).

Each function's document is fetched through the function's own handler
(`GET /functions/v1/<name>/openapi.json`), so the page shows exactly what a client of the
deployed function would get.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import flask

__all__ = ["STATIC_DIR", "combine", "documents", "register"]

STATIC_DIR = Path(__file__).with_name("static")
Handler = Callable[[flask.Request], Any]
_REF_PREFIX = "#/components/schemas/"


def documents(app: flask.Flask, handlers: Mapping[str, Handler]) -> dict[str, Any]:
    """Each function's OpenAPI document, asked of its handler; failures kept as errors."""
    found: dict[str, Any] = {}
    for name in sorted(handlers):
        path = f"/functions/v1/{name}/openapi.json"
        with app.test_request_context(path, method="GET"):
            try:
                response = flask.make_response(handlers[name](flask.request))
                found[name] = (
                    json.loads(response.get_data(as_text=True))
                    if response.status_code == 200
                    else {"error": f"{path} answered {response.status_code}"}
                )
            except Exception as exc:  # one broken function must not hide the others
                found[name] = {"error": f"{path} failed: {type(exc).__name__}"}
    return found


def _refs(node: Any) -> set[str]:
    """Component names a schema refers to."""
    if isinstance(node, dict):
        found = set()
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
            found.add(ref[len(_REF_PREFIX) :])
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node)) if node else set()
    return set()


def _rename(node: Any, names: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        out = {key: _rename(value, names) for key, value in node.items()}
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
            out["$ref"] = _REF_PREFIX + names.get(ref[len(_REF_PREFIX) :], ref[len(_REF_PREFIX) :])
        return out
    if isinstance(node, list):
        return [_rename(item, names) for item in node]
    return node


def _renames(name: str, schemas: Mapping[str, Any], combined: Mapping[str, Any]) -> dict[str, str]:
    """Which of a function's schema names must become `<function>.<Name>`.

    A name stays when the combined document has none by that name, or the very same schema
    whose references stay too; anything else is renamed so no function's model is replaced
    by another function's model of the same name.
    """
    keep = {s for s in schemas if s not in combined or combined[s] == schemas[s]}
    changed = True
    while changed:  # a kept schema that refers to a renamed one must be renamed too
        changed = False
        for schema_name in list(keep):
            if schema_name in combined and not _refs(schemas[schema_name]) <= keep:
                keep.discard(schema_name)
                changed = True
    return {s: f"{name}.{s}" for s in schemas if s not in keep}


def combine(docs: Mapping[str, Any], *, version: str = "dev") -> dict[str, Any]:
    """One OpenAPI 3.1 document for all functions: paths side by side, one tag per function."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    security: dict[str, Any] = {}
    tags: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    for name in sorted(docs):
        doc = docs[name]
        if "error" in doc or "paths" not in doc:
            errors[name] = str(doc.get("error", "not an OpenAPI document"))
            tags.append({"name": name, "description": errors[name]})
            continue
        components = doc.get("components", {})
        own = components.get("schemas", {})
        names = _renames(name, own, schemas)
        for schema_name, schema in own.items():
            schemas.setdefault(names.get(schema_name, schema_name), _rename(schema, names))
        security.update(components.get("securitySchemes", {}))
        for path, operations in doc["paths"].items():
            paths.setdefault(path, {}).update(_rename(copy.deepcopy(operations), names))
        info = doc.get("info", {})
        tags.append(
            {
                "name": name,
                "x-displayName": info.get("title", name),
                "description": info.get("description", ""),
                "x-openapi": f"/functions/v1/{name}/openapi.json",
            }
        )
    combined: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Functions",
            "version": version,
            "description": "Every function served by `make dev`, from their own documents.",
        },
        "servers": [{"url": "/functions/v1"}],
        "tags": tags,
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": security},
    }
    if errors:
        combined["x-errors"] = errors
    return combined


def register(app: flask.Flask, handlers: Mapping[str, Handler]) -> None:
    """Serve the page at /docs, its assets at /docs/static/<file>, the document at
    /docs/openapi.json (rebuilt per request: cheap, and never stale)."""

    @app.get("/docs")
    @app.get("/docs/")
    def docs_index() -> Any:
        response = flask.send_from_directory(STATIC_DIR, "docs.html", max_age=0)
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/docs/static/<path:filename>")
    def docs_static(filename: str) -> Any:
        return flask.send_from_directory(STATIC_DIR, filename, max_age=0)

    @app.get("/docs/openapi.json")
    def docs_openapi() -> Any:
        response = flask.jsonify(combine(documents(app, handlers)))
        response.headers["Cache-Control"] = "no-store"
        return response

    from fnkit import docs_signing

    docs_signing.register(app)  # POST /docs/sign: credentials for trying machine routes
