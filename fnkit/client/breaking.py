"""What in a new OpenAPI document breaks a caller written against the released one.

A caller sends inputs (parameters, bodies) and reads outputs (success answers), so the two are
compared in opposite directions: an input breaks when the new document accepts less (a new
required field or parameter, a narrowed type, a tighter bound, a removed enum value, a field a
closed model no longer knows); an output breaks when it may carry what the old one never did
(a removed or no longer required field, a widened type such as a new null, a new enum value).
A removed operation, a renamed operation id (generated clients name their functions after it)
and a changed success status break too. Anything else, such as a new operation, a new optional
input or a new output field, is additive and passes.
"""

from __future__ import annotations

from typing import Any

_REF = "#/components/schemas/"
_BOUNDS_UP = ("minLength", "minimum", "exclusiveMinimum", "minItems")  # rising narrows
_BOUNDS_DOWN = ("maxLength", "maximum", "exclusiveMaximum", "maxItems")  # falling narrows
_METHODS = ("get", "put", "post", "delete", "patch")


class _Docs:
    """The old and the new document, for resolving each side's `$ref`s."""

    def __init__(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.old, self.new = old, new
        self.seen: set[tuple[str, str, str]] = set()

    @staticmethod
    def resolve(doc: dict[str, Any], schema: Any) -> dict[str, Any]:
        for _ in range(32):
            if not isinstance(schema, dict) or "$ref" not in schema:
                break
            name = str(schema["$ref"]).removeprefix(_REF)
            schema = doc.get("components", {}).get("schemas", {}).get(name, {})
        return schema if isinstance(schema, dict) else {}


def _members(docs: _Docs, doc: dict[str, Any], schema: Any) -> list[dict[str, Any]]:
    schema = docs.resolve(doc, schema)
    union = schema.get("anyOf") or schema.get("oneOf")
    if union:
        return [m for item in union for m in _members(docs, doc, item)]
    return [schema]


def _types(members: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for schema in members:
        if "const" in schema:
            found.add(_json_type(schema["const"]))
            continue
        kind = schema.get("type")
        if kind is None:
            found.add("any" if "enum" not in schema else "")
            found |= {_json_type(value) for value in schema.get("enum", [])}
        else:
            found |= {kind} if isinstance(kind, str) else set(kind)
    if "number" in found:
        found.add("integer")
    return found - {""}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return {float: "number", str: "string", list: "array", dict: "object"}.get(type(value), "any")


def _enum(members: list[dict[str, Any]]) -> set[str] | None:
    """The values allowed when every member is an enum or a const (else None: open)."""
    values: set[str] = set()
    for schema in members:
        if "const" in schema:
            values.add(repr(schema["const"]))
        elif "enum" in schema:
            values |= {repr(value) for value in schema["enum"]}
        elif schema.get("type") != "null":
            return None
    return values


def _compare(docs: _Docs, old: Any, new: Any, where: str, reading: bool) -> list[str]:
    """Breaking differences of one schema; `reading`: the caller reads it (an output)."""
    key = (str(old.get("$ref", id(old))), str(new.get("$ref", id(new))), str(reading))
    if key in docs.seen and "$ref" in old:
        return []  # a recursive model, already being compared
    docs.seen.add(key)
    before, after = _members(docs, docs.old, old), _members(docs, docs.new, new)
    old_types, new_types = _types(before), _types(after)
    problems: list[str] = []
    if reading and "any" not in old_types and new_types - old_types:
        problems.append(f"{where}: may now be {', '.join(sorted(new_types - old_types))}")
    if not reading and "any" not in new_types and old_types - new_types:
        problems.append(f"{where}: no longer accepts {', '.join(sorted(old_types - new_types))}")
    old_enum, new_enum = _enum(before), _enum(after)
    if old_enum is not None and new_enum is not None:
        changed = new_enum - old_enum if reading else old_enum - new_enum
        verb = "may now be" if reading else "no longer accepts"
        if changed:
            problems.append(f"{where}: {verb} {', '.join(sorted(changed))}")
    elif not reading and new_enum is not None and old_enum is None:
        problems.append(f"{where}: now accepts only {', '.join(sorted(new_enum))}")
    old_object = _merged_object(before)
    new_object = _merged_object(after)
    if old_object is not None and new_object is not None:
        problems += _compare_objects(docs, old_object, new_object, where, reading)
    old_items = [s["items"] for s in before if "items" in s]
    new_items = [s["items"] for s in after if "items" in s]
    if old_items and new_items:
        problems += _compare(docs, old_items[0], new_items[0], f"{where}[]", reading)
    if not reading and len(before) == 1 and len(after) == 1:
        problems += _bounds(before[0], after[0], where)
    return problems


def _merged_object(members: list[dict[str, Any]]) -> dict[str, Any] | None:
    objects = [s for s in members if "properties" in s or s.get("type") == "object"]
    return objects[0] if len(objects) == 1 else None


def _compare_objects(
    docs: _Docs, old: dict[str, Any], new: dict[str, Any], where: str, reading: bool
) -> list[str]:
    problems: list[str] = []
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    old_required, new_required = set(old.get("required", [])), set(new.get("required", []))
    for name in sorted(old_props):
        at = f"{where}.{name}"
        if name not in new_props:
            if reading:
                problems.append(f"{at}: removed")
            elif new.get("additionalProperties") is False:
                problems.append(f"{at}: removed (the model refuses unknown fields)")
            continue
        if reading and name in old_required and name not in new_required:
            problems.append(f"{at}: may now be absent")
        problems += _compare(docs, old_props[name], new_props[name], at, reading)
    if not reading:
        for name in sorted(new_required - old_required):
            problems.append(f"{where}.{name}: new required input")
    return problems


def _bounds(old: dict[str, Any], new: dict[str, Any], where: str) -> list[str]:
    problems = []
    for bound in _BOUNDS_UP + _BOUNDS_DOWN:
        if bound not in new or old.get(bound) == new[bound]:
            continue
        rising = bound in _BOUNDS_UP
        if bound not in old or (new[bound] > old[bound] if rising else new[bound] < old[bound]):
            problems.append(f"{where}: {bound} {old.get(bound, 'none')} -> {new[bound]}")
    if new.get("pattern") and new.get("pattern") != old.get("pattern"):
        problems.append(f"{where}: pattern {old.get('pattern')!r} -> {new['pattern']!r}")
    return problems


def _parameters(operation: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(p["in"], p["name"]): p for p in operation.get("parameters", [])}


def _success(operation: dict[str, Any]) -> tuple[str | None, Any]:
    codes = sorted(code for code in operation.get("responses", {}) if code.startswith("2"))
    if not codes:
        return None, None
    answer = operation["responses"][codes[0]]
    return codes[0], answer.get("content", {}).get("application/json", {}).get("schema")


def _compare_operation(docs: _Docs, old: dict[str, Any], new: dict[str, Any], at: str) -> list[str]:
    problems: list[str] = []
    if old.get("operationId") != new.get("operationId"):
        problems.append(f"{at}: operationId {old.get('operationId')} -> {new.get('operationId')}")
    old_params, new_params = _parameters(old), _parameters(new)
    for key, param in new_params.items():
        if param.get("required") and not old_params.get(key, {}).get("required"):
            problems.append(f"{at}: {key[0]} parameter {key[1]}: new required input")
    for key, param in old_params.items():
        if key not in new_params:
            if key[0] in ("path", "query"):
                problems.append(f"{at}: {key[0]} parameter {key[1]}: removed")
            continue
        where = f"{at}: {key[0]} parameter {key[1]}"
        problems += _compare(
            docs, param.get("schema", {}), new_params[key].get("schema", {}), where, False
        )
    old_body = old.get("requestBody", {}).get("content", {}).get("application/json", {})
    new_body = new.get("requestBody", {}).get("content", {}).get("application/json", {})
    if new_body and not old_body and new.get("requestBody", {}).get("required"):
        problems.append(f"{at}: body: new required input")
    if old_body and new_body:
        problems += _compare(
            docs, old_body.get("schema", {}), new_body.get("schema", {}), f"{at}: body", False
        )
    old_code, old_answer = _success(old)
    new_code, new_answer = _success(new)
    if old_code != new_code:
        problems.append(f"{at}: success status {old_code} -> {new_code}")
    elif old_answer is not None and new_answer is not None:
        problems += _compare(docs, old_answer, new_answer, f"{at}: answer", True)
    return problems


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Each change in `new` that breaks a caller of `old`, as one readable line."""
    docs = _Docs(old, new)
    problems: list[str] = []
    for path, operations in old.get("paths", {}).items():
        for method in _METHODS:
            if method not in operations:
                continue
            at = f"{method.upper()} {path}"
            operation = new.get("paths", {}).get(path, {}).get(method)
            if operation is None:
                problems.append(f"{at}: operation removed")
                continue
            problems += _compare_operation(docs, operations[method], operation, at)
    return problems
