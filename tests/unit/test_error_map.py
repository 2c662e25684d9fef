"""The open error map: defaults by SQLSTATE, functions' own constraints and classes."""

from __future__ import annotations

from types import SimpleNamespace

import psycopg.errors
import psycopg_pool
import pytest

from shared.error_map import ErrorMap, loggable
from shared.errors import BadRequest, Conflict, Internal, NotFound, ValidationFailed


class PgError(Exception):
    """What psycopg raises, as far as the map reads it: a SQLSTATE and diagnostics."""

    def __init__(self, sqlstate: str, constraint: str = "", primary: str = "", detail: str = ""):
        super().__init__(primary)
        self.sqlstate = sqlstate
        self.diag = SimpleNamespace(
            constraint_name=constraint or None, message_primary=primary, message_detail=detail
        )


@pytest.mark.parametrize(
    ("sqlstate", "status", "code"),
    [
        ("23505", 409, "CONFLICT"), ("23514", 422, "VALIDATION_FAILED"),
        ("22P02", 422, "VALIDATION_FAILED"), ("22012", 422, "VALIDATION_FAILED"),
        ("42501", 403, "FORBIDDEN"), ("57014", 504, "TIMEOUT"), ("57P01", 503, "UNAVAILABLE"),
        ("08006", 503, "UNAVAILABLE"), ("53300", 503, "UNAVAILABLE"), ("40001", 409, "CONFLICT"),
        ("P0002", 404, "NOT_FOUND"), ("XX000", 500, "INTERNAL"), ("42P01", 500, "INTERNAL"),
    ],
)  # fmt: skip
def test_defaults_by_sqlstate_and_class(sqlstate: str, status: int, code: str) -> None:
    error = ErrorMap().map(PgError(sqlstate, primary="secret detail"))
    assert (error.status, error.code) == (status, code)
    assert "secret" not in error.message


def test_a_real_psycopg_exception_maps_by_its_sqlstate() -> None:
    error = ErrorMap().map(psycopg.errors.UniqueViolation("duplicate key"))
    assert error.status == 409 and "duplicate" not in error.message


def test_lost_connections_are_503_with_retry_after() -> None:
    for exc in (psycopg.OperationalError("gone"), psycopg_pool.PoolTimeout("full")):
        error = ErrorMap().map(exc)
        assert (error.status, error.headers["Retry-After"]) == (503, "5")


def test_foreign_keys_show_only_messages_that_repeat_the_input() -> None:
    errors = ErrorMap()
    referenced = errors.map(PgError("23503", detail='Key is still referenced from "x"'))
    assert (referenced.status, referenced.message) == (409, "The row is still referenced")
    parent = errors.map(PgError("23503", primary=f"project {'a' * 8}-{'b' * 4}-{'c' * 4}-"
                                                 f"{'d' * 4}-{'e' * 12} does not exist"))  # fmt: skip
    assert parent.status == 422 and parent.message.startswith("Project aaaaaaaa-")
    other = errors.map(PgError("23503", primary="insert violates fk_secret_name"))
    assert other.message == "A referenced row does not exist"


def test_a_registered_constraint_wins_over_its_sqlstate() -> None:
    errors = ErrorMap()
    errors.constraint("orders_number_key", Conflict, "That order number is taken")
    assert errors.map(PgError("23505", "orders_number_key")).message == "That order number is taken"
    assert errors.map(PgError("23505", "other_key")).message.startswith("A row with these")


def test_classes_are_looked_up_along_the_mro_and_handlers_may_decline() -> None:
    errors = ErrorMap()
    errors.on(psycopg.errors.IntegrityError, BadRequest, "integrity")

    @errors.handler(psycopg.errors.UniqueViolation)
    def unique(exc: BaseException) -> ValidationFailed | None:
        return ValidationFailed("unique") if "mine" in str(exc) else None

    assert errors.map(psycopg.errors.UniqueViolation("mine")).message == "unique"
    assert errors.map(psycopg.errors.UniqueViolation("theirs")).message == "integrity"
    assert errors.map(psycopg.errors.CheckViolation("x")).message == "integrity"


def test_sqlstate_keys_and_their_shape() -> None:
    errors = ErrorMap()
    errors.on("42P01", NotFound, "No such table")
    errors.on("XX", Conflict)
    assert errors.map(PgError("42P01")).message == "No such table"
    assert errors.map(PgError("XX001")).status == 409
    with pytest.raises(ValueError, match="SQLSTATE"):
        errors.on("123", Conflict)
    with pytest.raises(ValueError, match="message"):
        errors.on("XX", lambda exc: None, "a message")


def test_anything_else_is_internal_and_api_errors_pass_through() -> None:
    errors = ErrorMap()
    assert isinstance(errors.map(KeyError("token=abc")), Internal)
    own = NotFound("mine")
    assert errors.map(own) is own


def test_loggable_leaves_out_what_postgres_quotes_from_the_statement() -> None:
    exc = PgError("22P02", primary="invalid input syntax")
    exc.args = ("invalid input syntax\nLINE 1: select 'secret-input'",)
    assert loggable(exc) == "22P02 PgError: invalid input syntax"
