"""A route's models come from its handler's signature; a disagreement fails at import."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from shared import App, Request
from shared.settings import Settings
from shared.signatures import resolve_models


class In(BaseModel):
    text: str


class Other(BaseModel):
    n: int


class Path(BaseModel):
    id: int


def create(request: Request, body: In) -> None: ...


def read(request: Request, path: Path, query: Other) -> None: ...


def untyped(request: Request, body) -> None: ...  # type: ignore[no-untyped-def]


def nothing(request: Request) -> None: ...


def test_models_come_from_the_signature() -> None:
    assert resolve_models("r", create, {}) == {"path": None, "query": None, "body": In}
    assert resolve_models("r", read, {}) == {"path": Path, "query": Other, "body": None}
    assert resolve_models("r", create, {"body": In})["body"] is In  # both, agreeing


@pytest.mark.parametrize(
    ("endpoint", "declared", "says"),
    [
        (create, {"body": Other}, "declares body=Other but the handler's `body` parameter is annotated In"),
        (nothing, {"body": In}, "declares body=In but the handler nothing() takes no `body` parameter"),
        (nothing, {"path": Path}, "declares path_model=Path but the handler nothing()"),
        (untyped, {}, "`body` parameter needs a pydantic model annotation"),
    ],
)  # fmt: skip
def test_a_mismatch_is_a_sentence_naming_the_route(
    endpoint: object, declared: dict[str, type[BaseModel]], says: str
) -> None:
    with pytest.raises(TypeError) as raised:
        resolve_models("notes: POST /", endpoint, declared)  # type: ignore[arg-type]
    assert str(raised.value).startswith("notes: POST /: ")
    assert says in str(raised.value)


def test_app_refuses_the_route_when_the_module_is_imported() -> None:
    settings = Settings(
        supabase_url="http://127.0.0.1:1",
        database_url="postgresql://x@127.0.0.1/x",
        upstash_url="http://127.0.0.1:1",
        upstash_token="t",
    )
    app = App("notes", settings=settings)
    with pytest.raises(TypeError, match=r"notes: POST /: the decorator declares body=Other"):
        app.post("/", body=Other)(create)
    app.post("/")(create)
    assert app.routes[-1].body is In


def test_models_defined_inside_a_function_need_the_decorator() -> None:
    class Local(BaseModel):
        n: int

    def handler(request: Request, body: Local) -> None: ...

    assert resolve_models("r", handler, {"body": Local})["body"] is Local
    with pytest.raises(TypeError, match=r"r: the handler's `body` annotation names nothing"):
        resolve_models("r", handler, {})
