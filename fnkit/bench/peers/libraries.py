"""The hello world plus the libraries a database function must load before its first answer.

psycopg and its pool (the query), pydantic (validation: one model with a constrained field,
built and used), PyJWT with cryptography (the token; ES256 needs cryptography, and PyJWT
loads it for HS256 too). No code of the runtime's: the cold-start section launches this
beside the hello world, so the table shows how much of a function's start the libraries take
and how much is left to `shared/` and the function itself (fnkit/bench/coldstart.py).
"""

from __future__ import annotations

from typing import Any

import jwt
import psycopg
import psycopg_pool
from pydantic import BaseModel, Field


class Query(BaseModel):
    limit: int = Field(default=50, ge=1, le=100)


LOADED = (jwt.algorithms.has_crypto, psycopg.__version__, psycopg_pool.__name__)


def handler(request: Any) -> str:
    Query.model_validate({"limit": 10})
    return "Hello World!"
