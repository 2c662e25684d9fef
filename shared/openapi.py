"""OpenAPI 3.1 from the same route declarations the pipeline enforces.

Models become JSON Schema through pydantic; every response is described inside the
envelope, and every error code a route can produce is listed with the error envelope.
The documents are also the source of typed clients (`fnkit client`), so they are shaped for
generators: request and response models and their envelopes are named components referenced by
`$ref` (not inlined under operation-made names), operation ids are `<function>_<handler>`, and
the `Idempotency-Key` and `If-Match` headers are declared where a route reads them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, TypeAdapter

from shared.conditional import reads_if_match
from shared.openapi_parts import BASE_COMPONENTS, IDEMPOTENCY_KEY, IF_MATCH, REF_TEMPLATE, ref

if TYPE_CHECKING:
    from shared.app import App
    from shared.routing import Route

_ERROR_STATUSES = {
    "400": "Bad request or invalid JSON",
    "401": "Missing or invalid token",
    "403": "Forbidden or MFA required",
    "404": "Not found",
    "409": "Conflict",
    "412": "Precondition failed: the If-Match version is stale",
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
    a path parameter (Postgres refuses a malformed one), an Idempotency-Key or an If-Match.
    412 needs If-Match. 429 needs a rate policy. 405 is never an answer of a documented
    operation.
    """
    possible = {"401", "403", "404", "500", "503", "504"}
    if route.method in _BODY_METHODS:
        possible |= {"400", "409", "413", "415"}
    if route.idempotent:
        possible |= {"400", "422"}
    if reads_if_match(route.endpoint):
        possible |= {"412", "422"}
    if route.path_model or route.query or route.body or route.param_names:
        possible.add("422")
    if route.rate is not None:
        possible.add("429")
    return possible


def _model_name(annotation: Any) -> str | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation.__name__
    return None


class _Schemas:
    """Collects component schemas so models referenced twice are written once.

    A route's own request and response models become components too (referenced by `$ref`,
    not inlined), so generators name them after the model instead of after the operation.
    """

    def __init__(self) -> None:
        self.components: dict[str, Any] = dict(BASE_COMPONENTS)

    def of(self, annotation: Any) -> dict[str, Any]:
        schema = TypeAdapter(annotation).json_schema(
            ref_template=REF_TEMPLATE, mode="serialization"
        )
        return self._hoist(schema, _model_name(annotation))

    def of_input(self, model: type[BaseModel]) -> dict[str, Any]:
        schema = model.model_json_schema(ref_template=REF_TEMPLATE, mode="validation")
        return self._hoist(schema, model.__name__)

    def inline(self, model: type[BaseModel]) -> dict[str, Any]:
        """A model's own schema (its fields become parameters), nested models hoisted."""
        return self._hoist(
            model.model_json_schema(ref_template=REF_TEMPLATE, mode="validation"), None
        )

    def _hoist(self, schema: dict[str, Any], name: str | None) -> dict[str, Any]:
        for nested, definition in schema.pop("$defs", {}).items():
            self.components.setdefault(nested, definition)
        if name is None or "$ref" in schema:
            return schema
        self.components.setdefault(name, schema)
        return ref(name)

    def envelope(self, data: dict[str, Any]) -> dict[str, Any]:
        """The success envelope around `data`: `<Model>Envelope` or `<Model>ListEnvelope`
        when the data is a model or a list of one, inline otherwise."""
        envelope = {
            "type": "object",
            "required": ["success", "data", "meta"],
            "properties": {"success": {"const": True}, "data": data, "meta": ref("Meta")},
        }
        target = data.get("items", {}) if data.get("type") == "array" else data
        named = target.get("$ref", "")
        if not named.startswith(REF_TEMPLATE.format(model="")) or len(target) != 1:
            return envelope
        name = named.rsplit("/", 1)[1] + ("ListEnvelope" if target is not data else "Envelope")
        self.components.setdefault(name, envelope)
        return ref(name)


def _parameters(route: Route, schemas: _Schemas) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    path_schema = schemas.inline(route.path_model) if route.path_model else {"properties": {}}
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
        query_schema = schemas.inline(route.query)
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
    if route.idempotent:
        params.append(IDEMPOTENCY_KEY)
    if reads_if_match(route.endpoint):
        params.append(IF_MATCH)
    return params


def operation_id(app: App, route: Route) -> str:
    """`<function>_<handler>` (tasks_create_task): stable while the handler keeps its name,
    unique across functions, so one client for all of them has no clashes."""
    return f"{app.name}_{route.endpoint.__name__.strip('_').removesuffix('_endpoint')}"


def _operation(app: App, route: Route, schemas: _Schemas) -> dict[str, Any]:
    data_schema: dict[str, Any] = schemas.of(route.response) if route.response is not None else {}
    if route.answer != "envelope":
        success: dict[str, Any] = {"type": "object", "additionalProperties": True}
    else:
        success = schemas.envelope(data_schema)
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
            "content": {"application/json": {"schema": ref("ErrorEnvelope")}},
        }
    operation: dict[str, Any] = {
        "operationId": operation_id(app, route),
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
