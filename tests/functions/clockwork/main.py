"""clockwork: a test-only function with a scheduled route that waits, and an emitting write."""

from __future__ import annotations

import threading
from typing import Any

from pydantic import Field

from shared import App, Conflict, Model, Request

app = App("clockwork")
entered = threading.Event()
release = threading.Event()


class EmitIn(Model):
    topic: str = Field(min_length=1, max_length=200)
    payload: dict[str, Any]
    key: str | None = None
    fail: bool = False


@app.post("/emit")
def emit(request: Request, body: EmitIn) -> dict[str, Any]:
    """Emit one message with a write; `fail` rolls the write (and the message) back."""
    request.db.value("select 1")
    message_id = request.emit(body.topic, body.payload, key=body.key)
    if body.fail:
        raise Conflict("rolled back on purpose")
    return {"id": message_id}


@app.post("/slow", schedule="0 0 1 1 *")
def slow(request: Request) -> dict[str, Any]:
    """Holds its run (and so the route's lock) until the test releases it."""
    entered.set()
    released = release.wait(30)
    return {"released": released}


handler = app.handler
