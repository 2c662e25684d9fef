"""The /docs page of `make dev`, driven in a real headless Chromium over the DevTools protocol.

The page must load with no network but the dev server (no CDN), list every served function,
and, after a user pastes a token and presses Send, show the envelope the route answered.
Chromium is Debian's `chromium` package (`.ci/run` installs it); without it this test fails.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fnkit.docs_page import STATIC_DIR, combine
from tests.fixtures.server import SEED_USERS, Served

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


class Page:
    """A page target driven over the DevTools protocol (one websocket, synchronous)."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.requests: list[str] = []
        self.console_errors: list[str] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self.ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=30))
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})  # type: ignore[no-any-return]
            self._event(message)

    def _event(self, message: dict[str, Any]) -> None:
        params = message.get("params", {})
        if message.get("method") == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])
        elif message.get("method") == "Runtime.exceptionThrown":
            self.console_errors.append(json.dumps(params["exceptionDetails"])[:500])

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 15) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {expression}")

    def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element, as a person would click."""
        box = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        x, y = box
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def paste(self, selector: str, text: str) -> None:
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.call("Input.insertText", text=text)


def _browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "no Chromium to drive: install Debian's chromium package (apt-get install -y chromium;"
        " .ci/run does it when missing)"
    )


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A headless Chromium with its DevTools endpoint; yields the endpoint's base URL."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    process = subprocess.Popen(
        [
            _browser(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-extensions", "--disable-dev-shm-usage",
            "--window-size=1280,900", f"--user-data-dir={profile}", "--remote-debugging-port=0",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 20
        while not (port_file.exists() and port_file.read_text().strip()):
            assert process.poll() is None, "chromium exited at start"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port_file.read_text().splitlines()[0]}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def page(browser: str) -> Iterator[Page]:
    from websockets.sync.client import connect

    target = httpx.put(f"{browser}/json/new?about:blank", timeout=10).json()
    with connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=10) as ws:
        driven = Page(ws)
        driven.call("Network.enable")
        driven.call("Runtime.enable")
        driven.call("Page.enable")
        yield driven
    httpx.get(f"{browser}/json/close/{target['id']}", timeout=10)


def _open_docs(page: Page, served: Served) -> None:
    page.call("Page.navigate", url=f"{served.url}/docs")
    page.wait_for("document.body && document.body.dataset.ready === 'true'")


def _try(page: Page, function: str, method: str, path: str) -> tuple[int, dict[str, Any]]:
    """Open a route's panel, press Send, return the status and envelope the page shows."""
    op = f'details.op[data-function="{function}"][data-method="{method}"][data-path="{path}"]'
    page.click(f"{op} > summary")
    page.wait_for(f"document.querySelector({json.dumps(op)}).open")
    page.click(f"{op} button.send")
    status = page.wait_for(
        f"document.querySelector({json.dumps(op + ' .result-status')})?.dataset.status"
    )
    text = page.evaluate(f"document.querySelector({json.dumps(op + ' pre.envelope')}).textContent")
    return int(status), json.loads(text)


def test_the_page_lists_every_function_and_tries_routes(page: Page, served: Served) -> None:
    functions = sorted(httpx.get(f"{served.url}/", timeout=10).json()["functions"])
    assert {"health", "me", "echo", "notes_example"} <= set(functions)
    _open_docs(page, served)
    page.click("#token-clear")  # a token another test left in localStorage

    listed = page.evaluate(
        "Array.from(document.querySelectorAll('nav a[data-function-link]'))"
        ".map(a => a.dataset.functionLink)"
    )
    assert sorted(listed) == functions
    sections = page.evaluate(
        "Object.fromEntries(Array.from(document.querySelectorAll('section.function'))"
        ".map(s => [s.dataset.function, s.querySelectorAll('details.op').length]))"
    )
    assert set(sections) == set(functions)
    assert all(count >= 1 for count in sections.values()), sections

    # A public route, no token.
    status, envelope = _try(page, "health", "get", "/health")
    assert status == 200
    assert envelope["success"] is True
    assert envelope["data"]["status"] == "ok"
    assert envelope["meta"]["request_id"]

    # A user route: without a token 401, then with a pasted one the caller's own data.
    status, envelope = _try(page, "me", "get", "/me")
    assert (status, envelope["error"]["code"]) == (401, "UNAUTHENTICATED")
    owner = SEED_USERS["owner"]
    page.paste("#token", served.token(owner, email="owner@example.com"))
    assert owner in page.evaluate("document.getElementById('token-state').textContent")
    me = 'details.op[data-function="me"][data-method="get"][data-path="/me"]'
    page.click(f"{me} button.send")
    page.wait_for(f"document.querySelector('{me} .result-status')?.dataset.status === '200'")
    envelope = json.loads(page.evaluate(f"document.querySelector('{me} pre.envelope').textContent"))
    assert envelope["success"] is True
    assert envelope["data"]["sub"] == owner

    # A write with the example body the page generated from the schema, then edited.
    op = 'details.op[data-function="echo"][data-method="post"][data-path="/echo"]'
    page.click(f"{op} > summary")
    generated = json.loads(page.evaluate(f"document.querySelector('{op} textarea').value"))
    assert set(generated) == {"name", "count", "tags"}
    page.evaluate(
        f"document.querySelector('{op} textarea').value ="
        ' JSON.stringify({name: "from the page", count: 2})'
    )
    page.click(f"{op} button.send")
    status = page.wait_for(f"document.querySelector('{op} .result-status')?.dataset.status")
    envelope = json.loads(page.evaluate(f"document.querySelector('{op} pre.envelope').textContent"))
    assert int(status) == 201
    assert envelope["data"] == {
        "item": {"name": "from the page", "count": 2, "tags": []},
        "user": owner,
    }

    # Query parameters typed into their inputs (a list one given comma-separated).
    search = 'details.op[data-function="echo"][data-method="get"][data-path="/echo/search"]'
    page.click(f"{search} > summary")
    page.paste(f'{search} input[data-param="limit"]', "7")
    page.paste(f'{search} input[data-param="status"]', "todo,done")
    page.click(f"{search} button.send")
    status = page.wait_for(f"document.querySelector('{search} .result-status')?.dataset.status")
    text = page.evaluate(f"document.querySelector('{search} pre.envelope').textContent")
    assert (int(status), json.loads(text)["data"]) == (
        200,
        {"status": ["todo", "done"], "limit": 7},
    )

    # Offline: everything the page loaded came from the dev server itself.
    loaded = [url for url in page.requests if not url.startswith("data:")]
    assert loaded and all(url.startswith(served.url) for url in loaded), loaded
    assert page.console_errors == []


def test_the_token_survives_a_reload(page: Page, served: Served) -> None:
    _open_docs(page, served)
    page.click("#token-clear")
    token = served.token(SEED_USERS["viewer"])
    page.paste("#token", token)
    page.call("Page.reload")
    page.wait_for("document.body && document.body.dataset.ready === 'true'")
    assert page.evaluate("document.getElementById('token').value") == token
    page.click("#token-clear")
    assert page.evaluate("localStorage.length") == 0


def test_the_assets_name_no_outside_host() -> None:
    for path in STATIC_DIR.iterdir():
        text = path.read_text(encoding="utf-8")
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, path


def test_combined_document_keeps_same_named_models_apart(served: Served) -> None:
    document = httpx.get(f"{served.url}/docs/openapi.json", timeout=30).json()
    assert document["openapi"] == "3.1.0"
    assert "/health" in document["paths"] and "/me" in document["paths"]
    tags = {tag["name"] for tag in document["tags"]}
    assert {"health", "me", "echo", "notes_example"} <= tags

    def doc(name: str, model: dict[str, Any]) -> dict[str, Any]:
        ref = {"$ref": "#/components/schemas/Item"}
        return {
            "info": {"title": name},
            "paths": {f"/{name}": {"get": {"tags": [name], "responses": {"200": ref}}}},
            "components": {"schemas": {"Item": model, "Meta": {"type": "object"}}},
        }

    merged = combine(
        {
            "a": doc("a", {"type": "object", "properties": {"x": {"type": "integer"}}}),
            "b": doc("b", {"type": "object", "properties": {"y": {"type": "string"}}}),
            "broken": {"error": "/functions/v1/broken/openapi.json answered 500"},
        }
    )
    schemas = merged["components"]["schemas"]
    assert set(schemas) == {"Item", "b.Item", "Meta"}  # identical Meta is written once
    assert merged["paths"]["/b"]["get"]["responses"]["200"] == {
        "$ref": "#/components/schemas/b.Item"
    }
    assert merged["paths"]["/a"]["get"]["responses"]["200"] == {"$ref": "#/components/schemas/Item"}
    assert merged["x-errors"] == {"broken": "/functions/v1/broken/openapi.json answered 500"}


def test_the_page_tries_machine_routes_with_supabases_credentials(
    page: Page, served: Served
) -> None:
    """An Auth hook is sent signed (Standard Webhooks, the dev secret, made by the dev server
    over the exact text sent) and answers 200 in the hook's own format; the database webhook
    gets the bearer secret, so its answer is about the body, not a 401."""
    _open_docs(page, served)
    page.click("#token-clear")
    page.paste("#token", served.token(SEED_USERS["viewer"]))  # a user's token is not sent
    hook = 'details.op[data-function="hooks"][data-method="post"][data-path="/hooks/custom-access-token"]'
    page.click(f"{hook} > summary")
    owner = SEED_USERS["owner"]
    page.evaluate(
        f"document.querySelector('{hook} textarea').value = JSON.stringify("
        f'{{user_id: "{owner}", claims: {{sub: "{owner}", role: "authenticated"}}}})'
    )
    page.click(f"{hook} button.send")
    status = page.wait_for(f"document.querySelector('{hook} .result-status')?.dataset.status")
    answer = json.loads(page.evaluate(f"document.querySelector('{hook} pre.envelope').textContent"))
    assert int(status) == 200, answer
    assert set(answer) == {"claims"}  # the hook's format, not the envelope
    assert answer["claims"]["sub"] == owner and answer["claims"]["memberships"]
    assert set(answer["claims"]["memberships"].values()) <= {"owner", "admin", "member", "viewer"}

    status, answer = _try(page, "hooks", "post", "/hooks/task-assigned")  # the example body
    assert (status, answer["error"]["code"]) == (422, "VALIDATION_FAILED"), answer
    signed = [url for url in page.requests if url.endswith("/docs/sign")]
    assert len(signed) == 2, page.requests
    assert page.console_errors == []
    page.click("#token-clear")
