"""Routes as data and the router: templates, matching, 404/405/preflight, relative paths."""

from __future__ import annotations

import pytest

from shared.errors import MethodNotAllowed, NotFound
from shared.routing import Preflight, Route, Router, function_relative


def endpoint() -> None: ...


def other() -> None: ...


def router(*routes: tuple[str, str]) -> Router:
    found = Router()
    for method, path in routes:
        found.add(Route(method, path, endpoint))
    return found


# ---- Route: templates and matching -----------------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "stored"),
    [("/tasks", "/tasks"), ("tasks", "/tasks"), ("/tasks/", "/tasks"), ("/", "/"), ("", "/"),
     ("//", "/"), ("/a/{id}/b/", "/a/{id}/b")],
)  # fmt: skip
def test_the_template_is_normalised_to_one_leading_and_no_trailing_slash(
    declared: str, stored: str
) -> None:
    assert Route("GET", declared, endpoint).path == stored


def test_the_method_is_upper_case_and_params_are_named_in_order() -> None:
    route = Route("get", "/workspaces/{workspace_id}/tasks/{id}", endpoint)
    assert route.method == "GET"
    assert route.param_names == ("workspace_id", "id")
    assert Route("GET", "/tasks", endpoint).param_names == ()


def test_params_match_one_segment_each() -> None:
    route = Route("GET", "/workspaces/{workspace_id}/tasks/{id}", endpoint)
    assert route.match("/workspaces/w1/tasks/t-2") == {"workspace_id": "w1", "id": "t-2"}
    assert route.match("/workspaces/w1/tasks/t-2/") == {"workspace_id": "w1", "id": "t-2"}
    assert route.match("/workspaces/w1/tasks/") is None  # an empty segment is no value
    assert route.match("/workspaces/w1/tasks/a/b") is None  # a value holds no slash
    assert route.match("/workspaces//tasks/t") is None
    assert route.match("/workspaces/w1/tasks") is None


def test_a_static_path_matches_with_or_without_one_trailing_slash_only() -> None:
    route = Route("GET", "/tasks", endpoint)
    assert route.match("/tasks") == {}
    assert route.match("/tasks/") == {}
    assert route.match("/tasks//") is None
    assert route.match("/tasksx") is None
    assert route.match("/x/tasks") is None
    assert route.match("tasks") is None


def test_the_root_route_matches_the_root_and_the_empty_path_only() -> None:
    route = Route("GET", "/", endpoint)
    assert route.match("/") == {}
    assert route.match("") == {}
    assert route.match("//") is None
    assert route.match("/x") is None


def test_template_text_is_literal_not_a_regular_expression() -> None:
    route = Route("GET", "/v1.0/a+b/(x)", endpoint)
    assert route.match("/v1.0/a+b/(x)") == {}
    assert route.match("/v1x0/a+b/(x)") is None
    assert route.match("/v1.0/aab/(x)") is None
    assert route.match("/v1.0/a+b/x") is None


def test_a_param_beside_literal_text_in_one_segment() -> None:
    route = Route("GET", "/files/{name}.json", endpoint)
    assert route.match("/files/report.json") == {"name": "report"}
    assert route.match("/files/report.txt") is None


@pytest.mark.parametrize("method", ["GET", "get", "HEAD"])
def test_single_statement_is_refused_on_reads(method: str) -> None:
    with pytest.raises(ValueError, match=r"single_statement is for writes") as raised:
        Route(method, "/tasks", endpoint, single_statement=True)
    assert "/tasks" in str(raised.value)


def test_single_statement_is_accepted_on_writes() -> None:
    for method in ("POST", "PATCH", "PUT", "DELETE"):
        assert Route(method, "/tasks", endpoint, single_statement=True).single_statement


# ---- Router.resolve --------------------------------------------------------------------------


def test_resolve_returns_the_route_and_its_params() -> None:
    routes = router(("GET", "/"), ("GET", "/{id}"), ("PATCH", "/{id}"))
    route, params = routes.resolve("PATCH", "/abc")
    assert (route.method, route.path, params) == ("PATCH", "/{id}", {"id": "abc"})
    route, params = routes.resolve("GET", "/")
    assert (route.path, params) == ("/", {})


def test_the_first_declared_route_of_the_method_wins() -> None:
    routes = Router()
    routes.add(Route("GET", "/tasks/{id}", endpoint))
    routes.add(Route("GET", "/tasks/mine", other))
    route, params = routes.resolve("GET", "/tasks/mine")
    assert route.endpoint is endpoint and params == {"id": "mine"}

    routes = Router()
    routes.add(Route("GET", "/tasks/mine", other))
    routes.add(Route("GET", "/tasks/{id}", endpoint))
    route, params = routes.resolve("GET", "/tasks/mine")
    assert route.endpoint is other and params == {}
    assert routes.resolve("GET", "/tasks/7")[0].endpoint is endpoint


def test_a_route_of_another_method_does_not_shadow_a_later_one() -> None:
    routes = router(("POST", "/{id}"), ("GET", "/{id}"))
    assert routes.resolve("GET", "/x")[0].method == "GET"


def test_an_unknown_path_is_not_found_whatever_the_method() -> None:
    routes = router(("GET", "/tasks"))
    for method in ("GET", "POST", "OPTIONS", "DELETE"):
        with pytest.raises(NotFound) as raised:
            routes.resolve(method, "/projects")
        assert raised.value.status == 404
    with pytest.raises(NotFound):
        Router().resolve("GET", "/")


def test_a_known_path_with_another_method_is_405_with_allow() -> None:
    routes = router(("GET", "/{id}"), ("PATCH", "/{id}"), ("DELETE", "/{id}"), ("POST", "/"))
    with pytest.raises(MethodNotAllowed) as raised:
        routes.resolve("PUT", "/abc")
    error = raised.value
    assert error.status == 405 and error.code == "METHOD_NOT_ALLOWED"
    # sorted, HEAD because GET is there, OPTIONS always; POST / is another path
    assert error.headers == {"Allow": "DELETE, GET, HEAD, OPTIONS, PATCH"}


def test_allow_has_no_head_without_get() -> None:
    routes = router(("POST", "/"), ("PUT", "/"))
    with pytest.raises(MethodNotAllowed) as raised:
        routes.resolve("GET", "/")
    assert raised.value.headers["Allow"] == "OPTIONS, POST, PUT"


def test_options_on_a_routed_path_is_a_preflight_with_the_allowed_methods() -> None:
    routes = router(("GET", "/{id}"), ("PATCH", "/{id}"))
    with pytest.raises(Preflight) as raised:
        routes.resolve("OPTIONS", "/abc")
    assert raised.value.allowed == ["GET", "HEAD", "OPTIONS", "PATCH"]
    assert str(raised.value) == "GET, HEAD, OPTIONS, PATCH"


def test_a_declared_options_route_is_served_not_preflighted() -> None:
    routes = router(("OPTIONS", "/"), ("GET", "/"))
    assert routes.resolve("OPTIONS", "/")[0].method == "OPTIONS"


@pytest.mark.parametrize(
    "path",
    ["/tasks\n", "/tasks/\n", "/tasks/a\nb", "/tasks/\x00", "/tasks/\r", "/tasks/\t", "/\x1f",
     "/tasks/\x7f", "/\x1b[31m"],
)  # fmt: skip
def test_a_path_holding_a_control_character_is_not_found(path: str) -> None:
    routes = router(("GET", "/tasks"), ("GET", "/tasks/{id}"), ("GET", "/{name}"))
    for method in ("GET", "OPTIONS", "POST"):
        with pytest.raises(NotFound) as raised:
            routes.resolve(method, path)
        # and the message does not carry the control character into logs or bodies
        assert raised.value.message == "No route for a path holding a control character"


def test_a_path_with_spaces_or_non_ascii_is_still_routed() -> None:
    routes = router(("GET", "/{name}"))
    assert routes.resolve("GET", "/a b")[1] == {"name": "a b"}
    assert routes.resolve("GET", "/caf\u00e9")[1] == {"name": "caf\u00e9"}


# ---- function_relative -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "relative"),
    [
        ("/functions/v1/tasks", "/"),
        ("/functions/v1/tasks/", "/"),
        ("/functions/v1/tasks/abc", "/abc"),
        ("/functions/v1/tasks/abc/", "/abc/"),
        ("/tasks", "/"),
        ("/tasks/abc", "/abc"),
        ("/", "/"),
        ("", "/"),
        ("/abc", "/abc"),  # Cloud Functions: already relative
        ("/tasksx", "/tasksx"),  # another name that starts alike
        ("/tasksx/1", "/tasksx/1"),
        ("/functions/v1/projects/1", "/projects/1"),  # another function's prefix is kept
        ("/functions/v1", "/functions/v1"),
    ],
)
def test_function_relative(path: str, relative: str) -> None:
    assert function_relative(path, "tasks") == relative


def test_function_relative_strips_the_name_once() -> None:
    assert function_relative("/functions/v1/tasks/tasks/1", "tasks") == "/tasks/1"
    assert function_relative("/tasks/tasks", "tasks") == "/tasks"
