"""The bare functions-framework hello world: the cold-start and memory floor."""

from __future__ import annotations

from typing import Any


def handler(request: Any) -> str:
    return "Hello World!"
