"""Exceptions to `ApiError`s: an open mapping, looked up by class, SQLSTATE and constraint.

The runtime knows what Postgres's error classes mean in HTTP (a unique violation is a 409, a
cancelled statement a 504, a lost connection a 503) and nothing of any product's schema. What a
particular constraint means is known where it is declared, so a function (or a module of the
product it imports) registers it on its app:

    app.errors.constraint("orders_number_key", Conflict, "That order number is taken")
    app.errors.on(psycopg.errors.RaiseException, lambda exc: BadRequest(str(exc)))

Lookup order, most precise first: a registered constraint name; then handlers by exception
class, walking the exception's MRO (psycopg raises one class per SQLSTATE, so
`psycopg.errors.UniqueViolation` is the class of 23505 and `IntegrityError` its family);
then handlers by SQLSTATE string ("23505"), then by SQLSTATE class ("23"). The defaults are
registered by SQLSTATE so that mapping nothing costs no `import psycopg`; a function may
register classes (Starlette's exception handlers and Powertools' `exception_handler` are the
model). Anything unmatched is INTERNAL, and never shows its message.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from shared.errors import (
    ApiError,
    Conflict,
    Forbidden,
    Internal,
    NotFound,
    Timeout,
    Unavailable,
    ValidationFailed,
)

Handler = Callable[[BaseException], ApiError | None]

# Messages a schema's own triggers raise for a missing or foreign parent row (SQLSTATE 23503),
# "<noun> <uuid> does not exist" or "<noun> <uuid> belongs to another <noun>": they repeat only
# the caller's input, so they may be shown; any other 23503 text may not. Compiled at first
# use (re keeps it cached): a cold start need not pay for an error it may never see.
_PARENT_MESSAGE = r"[a-z_ ]{1,40} [0-9a-f-]{36} (does not exist|belongs to another [a-z_ ]{1,40})"
_CONNECTION_LOST = {
    ("psycopg", "OperationalError"),
    ("psycopg", "InterfaceError"),
    ("psycopg_pool", "PoolTimeout"),
    ("psycopg_pool", "PoolClosed"),
    ("psycopg", "ConnectionTimeout"),
}


def diagnostic(exc: BaseException, field: str) -> str:
    """A field of a Postgres error's diagnostics (`constraint_name`, `message_primary`...)."""
    value = getattr(getattr(exc, "diag", None), field, None)
    return value if isinstance(value, str) else ""


def _fixed(error: type[ApiError], message: str | None) -> Handler:
    return lambda _exc: error(message)


def _foreign_key(exc: BaseException) -> ApiError:
    """23503: deleting a referenced row is a conflict; naming a missing one is bad input."""
    text = diagnostic(exc, "message_primary")
    if "still referenced" in text + diagnostic(exc, "message_detail"):
        return Conflict("The row is still referenced")
    if not re.fullmatch(_PARENT_MESSAGE, text):
        return ValidationFailed("A referenced row does not exist")
    return ValidationFailed(text[:1].upper() + text[1:])


DEFAULT_SQLSTATES: dict[str, Handler] = {
    "23505": _fixed(Conflict, "A row with these values already exists"),
    "23503": _foreign_key,
    "23514": _fixed(ValidationFailed, "A value breaks a rule of the data"),
    "23502": _fixed(ValidationFailed, "A required value is missing"),
    "22P02": _fixed(ValidationFailed, "A value has the wrong format"),
    "22001": _fixed(ValidationFailed, "A value is too long"),
    "22003": _fixed(ValidationFailed, "A number is out of range"),
    "22007": _fixed(ValidationFailed, "A date or time has the wrong format"),
    "22008": _fixed(ValidationFailed, "A date or time is out of range"),
    "42501": _fixed(Forbidden, "You may not do this"),
    "57014": _fixed(Timeout, "The database took too long"),
    "40001": _fixed(Conflict, "The change collided with another; retry"),
    "40P01": _fixed(Conflict, "The change collided with another; retry"),
    "P0002": _fixed(NotFound, "Not found"),
    # Classes (the first two characters), after the codes above.
    "22": _fixed(ValidationFailed, "A value is not valid"),  # data exception
    "08": _fixed(Unavailable, "The database is unavailable"),  # connection exception
    "53": _fixed(Unavailable, "The database is unavailable"),  # insufficient resources
    "57": _fixed(Unavailable, "The database is unavailable"),  # admin or crash shutdown
}


class ErrorMap:
    """One function's mapping; `map` never raises and never returns a message it should not."""

    def __init__(self) -> None:
        self._constraints: dict[str, Handler] = {}
        self._classes: dict[type[BaseException], Handler] = {}
        self._sqlstates: dict[str, Handler] = dict(DEFAULT_SQLSTATES)

    def constraint(
        self, name: str, error: type[ApiError] | Handler, message: str | None = None
    ) -> None:
        """What a violation of the constraint `name` means to a caller."""
        self._constraints[name] = _as_handler(error, message)

    def on(
        self,
        key: type[BaseException] | str,
        error: type[ApiError] | Handler,
        message: str | None = None,
    ) -> None:
        """Map an exception class (with its subclasses) or a SQLSTATE ("23505", "23")."""
        handler = _as_handler(error, message)
        if isinstance(key, str):
            if len(key) not in (2, 5):
                raise ValueError(f"{key!r} is neither a SQLSTATE nor a SQLSTATE class")
            self._sqlstates[key] = handler
        else:
            self._classes[key] = handler

    def handler(self, key: type[BaseException] | str) -> Callable[[Handler], Handler]:
        """The decorator form of `on`."""

        def register(handler: Handler) -> Handler:
            self.on(key, handler)
            return handler

        return register

    def map(self, exc: BaseException) -> ApiError:
        if isinstance(exc, ApiError):
            return exc
        for handler in self._candidates(exc):
            mapped = handler(exc)
            if mapped is not None:
                return mapped
        return Internal()

    def _candidates(self, exc: BaseException) -> list[Handler]:
        found = []
        constraint = diagnostic(exc, "constraint_name")
        if constraint in self._constraints:
            found.append(self._constraints[constraint])
        found += [self._classes[cls] for cls in type(exc).__mro__ if cls in self._classes]
        sqlstate = getattr(exc, "sqlstate", None)
        if isinstance(sqlstate, str):
            found += [self._sqlstates[k] for k in (sqlstate, sqlstate[:2]) if k in self._sqlstates]
        if (type(exc).__module__.split(".")[0], type(exc).__name__) in _CONNECTION_LOST:
            found.append(_fixed(Unavailable, "The database is unavailable"))
        return found


def _as_handler(error: type[ApiError] | Handler, message: str | None) -> Handler:
    if isinstance(error, type) and issubclass(error, ApiError):
        return _fixed(error, message)
    if message is not None:
        raise ValueError("a message goes with an ApiError class, not with a handler")
    return error  # type: ignore[return-value]


def loggable(exc: BaseException) -> str:
    """An exception's message for the log, without what Postgres quotes from the statement
    (reads inline their parameters, so a "LINE 1: ..." context could hold a caller's input)."""
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str):
        return f"{sqlstate} {type(exc).__name__}: {diagnostic(exc, 'message_primary')}"[:500]
    return str(exc)[:500]
