"""OpenAPI 3.1 from the same route declarations the pipeline enforces.

Models become JSON Schema through pydantic; every response is described inside the
envelope, and every error code a route can produce is listed with the error envelope.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, TypeAdapter

if TYPE_CHECKING:
    from shared.app import App
    from shared.routing import Route

_REF_TEMPLATE = "#/components/schemas/{model}"

_ERROR_ENVELOPE: dict[str, Any] = {
    "type": "object",
    "required": ["success", "error", "meta"],
    "properties": {
        "success": {"const": False},
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "array", "items": {"type": "object"}},
            },
        },
        "meta": {"$ref": "#/components/schemas/Meta"},
    },
}
_META: dict[str, Any] = {
    "type": "object",
    "required": ["request_id"],
    "properties": {
        "request_id": {"type": "string"},
        "pagination": {
            "type": "object",
            "properties": {
                "next_cursor": {"type": ["string", "null"]},
                "limit": {"type": "integer"},
            },
        },
        "cache": {"type": "string", "enum": ["hit", "miss"]},
    },
    "additionalProperties": True,
}
_ERROR_STATUSES = {
    "400": "Bad request or invalid JSON",
    "401": "Missing or invalid token",
    "403": "Forbidden or MFA required",
    "404": "Not found",
    "409": "Conflict",
    "413": "Body too large",
    "415": "Body must be JSON",
    "422": "Validation failed",
    "429": "Rate limited",
    "500": "Internal error",
    "503": "A dependency is unavailable",
    "504": "Timed out",
}


_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def error_statuses(route: Route) -> set[str]:
    """The error statuses a route can answer, from what its declaration lets happen.

    Always: 401 (a token is checked whenever one is sent, public routes too), 403 (RLS),
    404, 500, and 503/504 (the database or Upstash lost or slow). A body may be sent to any
    POST/PUT/PATCH/DELETE (400 invalid JSON, 413, 415). 409 needs a write. 422 needs a model,
    a path parameter (Postgres refuses a malformed one) or an Idempotency-Key. 429 needs a
    rate policy. 405 is never an answer of a documented operation.
    """
    possible = {"401", "403", "404", "500", "503", "504"}
    if route.method in _BODY_METHODS:
        possible |= {"400", "409", "413", "415"}
    if route.idempotent:
        possible |= {"400", "422"}
    if route.path_model or route.query or route.body or route.param_names:
        possible.add("422")
    if route.rate is not None:
        possible.add("429")
    return possible


class _Schemas:
    """Collects component schemas so models referenced twice are written once."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {"Meta": _META, "Error": _ERROR_ENVELOPE}

    def of(self, annotation: Any) -> dict[str, Any]:
        schema = TypeAdapter(annotation).json_schema(
            ref_template=_REF_TEMPLATE, mode="serialization"
        )
        return self._hoist(schema)

    def of_input(self, model: type[BaseModel]) -> dict[str, Any]:
        schema = model.model_json_schema(ref_template=_REF_TEMPLATE, mode="validation")
        return self._hoist(schema)

    def _hoist(self, schema: dict[str, Any]) -> dict[str, Any]:
        for name, definition in schema.pop("$defs", {}).items():
            self.components.setdefault(name, definition)
        return schema


def _parameters(route: Route, schemas: _Schemas) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    path_schema = schemas.of_input(route.path_model) if route.path_model else {"properties": {}}
    for name in route.param_names:
        params.append(
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": path_schema["properties"].get(name, {"type": "string"}),
            }
        )
    if route.query is not None:
        query_schema = schemas.of_input(route.query)
        required = set(query_schema.get("required", []))
        for name, schema in query_schema.get("properties", {}).items():
            param: dict[str, Any] = {
                "name": name,
                "in": "query",
                "required": name in required,
                "schema": schema,
            }
            if schema.get("type") == "array" or any(
                s.get("type") == "array" for s in schema.get("anyOf", [])
            ):
                param["style"], param["explode"] = "form", True
            params.append(param)
    return params


def _operation(app: App, route: Route, schemas: _Schemas) -> dict[str, Any]:
    data_schema: dict[str, Any] = schemas.of(route.response) if route.response is not None else {}
    if route.answer != "envelope":
        success: dict[str, Any] = {"type": "object"}
    else:
        success = {
            "type": "object",
            "required": ["success", "data", "meta"],
            "properties": {
                "success": {"const": True},
                "data": data_schema,
                "meta": {"$ref": "#/components/schemas/Meta"},
            },
        }
    responses: dict[str, Any] = {
        str(route.status): {"description": "Success"}
        if route.status == 204  # no body, no content
        else {"description": "Success", "content": {"application/json": {"schema": success}}}
    }
    possible = error_statuses(route)
    for status, text in _ERROR_STATUSES.items():
        if status not in possible:
            continue
        responses[status] = {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    operation: dict[str, Any] = {
        "operationId": f"{app.name}_{route.method.lower()}_{route.endpoint.__name__}",
        "summary": route.summary or f"{route.method} {route.path}",
        "tags": [app.name],
        "parameters": _parameters(route, schemas),
        "responses": responses,
        "x-auth": route.auth if isinstance(route.auth, str) else route.auth.scheme_name,
        # Which contract the answers follow (shared.envelope.Answer): clients, /docs and the
        # hostile tests read it instead of guessing from the path.
        "x-answer": route.answer,
    }
    if route.rate is not None:
        operation["x-rate-limit"] = {
            "policy": route.rate.name,
            "limit": route.rate.limit,
            "window": route.rate.window,
        }
    if route.schedule is not None:
        operation["x-schedule"] = {"cron": route.schedule.cron, "timezone": route.schedule.timezone}
    if route.description and route.description.strip() != operation["summary"]:
        operation["description"] = route.description.strip()
    if not isinstance(route.auth, str):
        operation["security"] = [{route.auth.scheme_name: []}]
    elif route.auth != "public":
        operation["security"] = [{"bearer": []}]
    else:
        operation["security"] = [{}, {"bearer": []}]
    if route.idempotent:
        operation["parameters"].append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 255,
                    "pattern": "^[\\x21-\\x7e]+$",
                },
            }
        )
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schemas.of_input(route.body)}},
        }
    return operation


def build_document(app: App) -> dict[str, Any]:
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for route in app.routes:
        full = f"/{app.name}" + ("" if route.path == "/" else route.path)
        paths.setdefault(full, {})[route.method.lower()] = _operation(app, route, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": app.title,
            "version": app.settings.version,
            **({"description": app.description} if app.description else {}),
        },
        "servers": [{"url": "/functions/v1"}],
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                **{
                    route.auth.scheme_name: route.auth.security_scheme()
                    for route in app.routes
                    if not isinstance(route.auth, str)
                },
            },
        },
    }
