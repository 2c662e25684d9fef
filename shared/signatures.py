"""A handler's signature is the one declaration of its models.

`def create(request, body: TaskCreate)` says the route takes a `TaskCreate` body; the
pipeline validates into it and passes it as `body`. The same goes for `path` and `query`.
A decorator may still name the model (`@app.post(..., body=TaskCreate)`), as older functions
do; then the two must agree. Either way a mistake (a model without a parameter to receive it,
a parameter without a model, two different models) fails when the module is imported, with a
sentence naming the route, not when a request first reaches it (FastAPI and Powertools derive
models from signatures the same way).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

INPUTS = ("path", "query", "body")  # where each model's data comes from, in that order


def resolve_models(
    route: str, endpoint: Callable[..., Any], declared: dict[str, type[BaseModel] | None]
) -> dict[str, type[BaseModel] | None]:
    """The path, query and body models of a route, from its handler and its decorator."""
    parameters = inspect.signature(endpoint).parameters
    resolved: dict[str, type[BaseModel] | None] = {}
    for name in INPUTS:
        model = declared.get(name)
        option = "path_model" if name == "path" else name
        hint = _annotation(endpoint, parameters[name]) if name in parameters else None
        if hint is _UNRESOLVED:
            if model is None:
                raise TypeError(
                    f"{route}: the handler's `{name}` annotation names nothing defined at the "
                    f"top of its module; declare the model in the decorator ({option}=...)"
                )
            hint = model  # a model defined inside a function: only the decorator can name it
        if name not in parameters:
            if model is not None:
                raise TypeError(
                    f"{route}: the decorator declares {option}={model.__name__} but the handler "
                    f"{endpoint.__name__}() takes no `{name}` parameter to receive it"
                )
            resolved[name] = None
            continue
        if not (isinstance(hint, type) and issubclass(hint, BaseModel)):
            if model is None:
                raise TypeError(
                    f"{route}: the handler's `{name}` parameter needs a pydantic model "
                    f"annotation (got {hint!r})"
                )
            hint = model
        if model is not None and model is not hint:
            raise TypeError(
                f"{route}: the decorator declares {option}={model.__name__} but the handler's "
                f"`{name}` parameter is annotated {hint.__name__}"
            )
        resolved[name] = hint
    return resolved


_UNRESOLVED = object()


def _annotation(endpoint: Callable[..., Any], parameter: inspect.Parameter) -> Any:
    """A parameter's annotation as a type. Postponed (string) annotations are evaluated in
    the handler's module, as `typing.get_type_hints` does, one at a time, so an annotation
    the runtime does not need (`request: Request` imported inside a function) cannot fail it."""
    annotation = parameter.annotation
    if annotation is inspect.Parameter.empty:
        return None
    if not isinstance(annotation, str):
        return annotation
    try:
        return eval(annotation, dict(getattr(endpoint, "__globals__", {})))  # noqa: S307
    except Exception:
        return _UNRESOLVED
