"""fnkit.client.breaking on small documents: each kind of break is named, additions pass."""

from __future__ import annotations

from typing import Any

from fnkit.client.breaking import breaking_changes


def _doc() -> dict[str, Any]:
    item = {
        "type": "object",
        "required": ["id", "kind"],
        "properties": {
            "id": {"type": "string"},
            "kind": {"enum": ["a", "b"]},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
    }
    item_in = {
        "type": "object",
        "additionalProperties": False,
        "required": ["kind"],
        "properties": {
            "kind": {"enum": ["a", "b"]},
            "size": {"type": "integer", "minimum": 0, "maximum": 10},
            "name": {"type": "string", "maxLength": 50},
        },
    }
    envelope = {"type": "object", "properties": {"data": {"$ref": "#/components/schemas/Item"}}}
    listing = {
        "type": "object",
        "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}}},
    }
    json_of = lambda ref: {"content": {"application/json": {"schema": {"$ref": ref}}}}  # noqa: E731
    return {
        "paths": {
            "/items": {
                "get": {
                    "operationId": "items_list",
                    "parameters": [
                        {"name": "limit", "in": "query", "required": False,
                         "schema": {"type": "integer", "maximum": 100}},
                    ],
                    "responses": {"200": json_of("#/components/schemas/ItemListEnvelope")},
                },
                "post": {
                    "operationId": "items_create",
                    "requestBody": {"required": True, **json_of("#/components/schemas/ItemIn")},
                    "responses": {"201": json_of("#/components/schemas/ItemEnvelope")},
                },
            }
        },
        "components": {
            "schemas": {
                "Item": item,
                "ItemIn": item_in,
                "ItemEnvelope": envelope,
                "ItemListEnvelope": listing,
            }
        },
    }  # fmt: skip


def _schemas(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["components"]["schemas"]  # type: ignore[no-any-return]


def test_the_same_document_has_no_break() -> None:
    assert breaking_changes(_doc(), _doc()) == []


def test_additions_pass() -> None:
    new = _doc()
    _schemas(new)["Item"]["properties"]["extra"] = {"type": "integer"}
    _schemas(new)["ItemIn"]["properties"]["extra"] = {"type": "integer"}
    _schemas(new)["ItemIn"]["properties"]["kind"]["enum"].append("c")  # accepts more
    _schemas(new)["ItemIn"]["properties"]["size"]["maximum"] = 20  # a wider bound
    new["paths"]["/items"]["get"]["parameters"].append(
        {"name": "q", "in": "query", "required": False, "schema": {"type": "string"}}
    )
    new["paths"]["/other"] = {"get": {"operationId": "other", "responses": {}}}
    assert breaking_changes(_doc(), new) == []


def test_each_break_is_named() -> None:
    old, new = _doc(), _doc()
    item, item_in = _schemas(new)["Item"], _schemas(new)["ItemIn"]
    item["properties"]["kind"]["enum"].append("c")  # an answer may carry a new value
    item["required"].remove("kind")  # ... or nothing
    del item["properties"]["id"]
    item["properties"]["note"] = {"type": ["string", "null", "integer"]}
    item_in["properties"]["kind"]["enum"].remove("b")
    item_in["properties"]["name"]["maxLength"] = 20
    item_in["required"].append("size")
    del item_in["properties"]["name"]
    new["paths"]["/items"]["get"]["parameters"].append(
        {"name": "q", "in": "query", "required": True, "schema": {"type": "string"}}
    )
    new["paths"]["/items"]["post"]["responses"] = {
        "200": new["paths"]["/items"]["post"]["responses"]["201"]
    }
    problems = breaking_changes(old, new)
    assert set(problems) == {
        "GET /items: query parameter q: new required input",
        "GET /items: answer.data[].id: removed",
        "GET /items: answer.data[].kind: may now be absent",
        "GET /items: answer.data[].kind: may now be 'c'",
        "GET /items: answer.data[].note: may now be integer",
        "POST /items: body.kind: no longer accepts 'b'",
        "POST /items: body.name: removed (the model refuses unknown fields)",
        "POST /items: body.size: new required input",
        "POST /items: success status 201 -> 200",
    }, problems


def test_removed_and_renamed_operations_break() -> None:
    new = _doc()
    del new["paths"]["/items"]["post"]
    new["paths"]["/items"]["get"]["operationId"] = "list_items"
    assert breaking_changes(_doc(), new) == [
        "GET /items: operationId items_list -> list_items",
        "POST /items: operation removed",
    ]


def test_a_narrowed_parameter_breaks() -> None:
    new = _doc()
    new["paths"]["/items"]["get"]["parameters"][0]["schema"] = {"type": "integer", "maximum": 50}
    assert breaking_changes(_doc(), new) == ["GET /items: query parameter limit: maximum 100 -> 50"]
