"""The WSGI app: Storage's routes, who may call each, and errors in Storage's shape.

Routes carry how they authenticate, as Storage registers them: `jwt` (a valid token is
required; a bad one is AccessDenied), `optional` (a missing or bad token reads as anonymous:
downloads, HEAD and info), `none` (public objects and signed URLs, which carry their own
proof), `service` (the service role only: emptying a bucket). Paths arrive without the
`/storage/v1` prefix (the gateway mounts the app there). Every GET route answers HEAD too
(werkzeug adds it, as fastify does): the renderer then sends the headers only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from fnkit.local.config import LocalConfig
from fnkit.local.storage import routes_buckets as buckets
from fnkit.local.storage import routes_list as listing
from fnkit.local.storage import routes_objects as objects
from fnkit.local.storage import routes_signed as signed
from fnkit.local.storage import routes_transfer as transfer
from fnkit.local.storage.blobs import Blobs
from fnkit.local.storage.caller import ANONYMOUS, caller_of
from fnkit.local.storage.context import Call, Context
from fnkit.local.storage.database import Database
from fnkit.local.storage.errors import StorageError, internal

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["StorageApp", "create_app"]

_log = logging.getLogger(__name__)

Handler = Callable[..., Response]
Auth = Literal["jwt", "optional", "none", "service"]
KEY = "<bucket>/<path:key>"


def _routes() -> list[tuple[str, list[str], Auth, Handler]]:
    """(path, methods, auth, handler): the object and bucket routes Storage serves."""
    return [
        ("/bucket", ["POST"], "jwt", buckets.create_bucket),
        ("/bucket/", ["POST"], "jwt", buckets.create_bucket),
        ("/bucket", ["GET"], "jwt", buckets.list_buckets),
        ("/bucket/", ["GET"], "jwt", buckets.list_buckets),
        ("/bucket/<bucket_id>", ["GET"], "jwt", buckets.get_bucket),
        ("/bucket/<bucket_id>", ["PUT"], "jwt", buckets.update_bucket),
        ("/bucket/<bucket_id>", ["DELETE"], "jwt", buckets.delete_bucket),
        ("/bucket/<bucket_id>/empty", ["POST"], "service", buckets.empty_bucket),
        ("/object/move", ["POST"], "jwt", transfer.move_object),
        ("/object/copy", ["POST"], "jwt", transfer.copy_object),
        ("/object/list/<bucket>", ["POST"], "jwt", listing.list_objects),
        ("/object/list-v2/<bucket>", ["POST"], "jwt", listing.list_objects_v2),
        (f"/object/sign/{KEY}", ["POST"], "jwt", signed.sign_object),
        ("/object/sign/<bucket>", ["POST"], "jwt", signed.sign_objects),
        (f"/object/sign/{KEY}", ["GET"], "none", signed.get_signed_object),
        (f"/object/upload/sign/{KEY}", ["POST"], "jwt", signed.sign_upload),
        (f"/object/upload/sign/{KEY}", ["PUT"], "none", signed.upload_signed_object),
        (f"/object/public/{KEY}", ["GET"], "none", objects.get_public_object),
        (
            f"/object/info/public/{KEY}",
            ["GET"],
            "none",
            partial(objects.get_object_info, public=True),
        ),
        (f"/object/info/authenticated/{KEY}", ["GET"], "jwt", objects.get_object_info),
        (f"/object/info/{KEY}", ["GET"], "optional", objects.get_object_info),
        (f"/object/authenticated/{KEY}", ["GET"], "jwt", objects.get_object),
        (f"/object/{KEY}", ["GET"], "optional", objects.get_object),
        (f"/object/{KEY}", ["POST"], "jwt", objects.create_object),
        (f"/object/{KEY}", ["PUT"], "jwt", objects.update_object),
        (f"/object/{KEY}", ["DELETE"], "jwt", objects.delete_object),
        ("/object/<bucket>", ["DELETE"], "jwt", objects.delete_objects),
    ]


class StorageApp:
    """The local Storage service as one WSGI callable."""

    def __init__(self, config: LocalConfig) -> None:
        self.ctx = Context(
            config=config,
            db=Database(config.database_url),
            blobs=Blobs(Path(config.data_dir) / "storage"),
        )
        self._handlers: dict[str, tuple[Auth, Handler]] = {}
        rules = []
        for number, (path, methods, auth, handler) in enumerate(_routes()):
            endpoint = f"route-{number}"
            self._handlers[endpoint] = (auth, handler)
            rules.append(Rule(path, methods=methods, endpoint=endpoint))
        self._map = Map(rules, strict_slashes=False, merge_slashes=False)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        response = self.dispatch(request)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        """Route, authenticate, run; every failure answered in Storage's shape."""
        try:
            adapter = self._map.bind_to_environ(request.environ)
            endpoint, values = adapter.match()
            auth, handler = self._handlers[str(endpoint)]
            return handler(self._call(request, auth), **values)
        except StorageError as exc:
            return exc.response()
        except (NotFound, MethodNotAllowed):
            url = request.full_path.rstrip("?")
            return StorageError.route_not_found(request.method, url).response()
        except HTTPException as exc:  # a body werkzeug refused (too large, malformed form)
            status = exc.code or 400
            return StorageError(
                status, "InvalidRequest", exc.description or "Bad Request"
            ).response()
        except Exception:
            _log.exception("local storage: %s %s failed", request.method, request.path)
            return internal().response()

    def _call(self, request: Request, auth: Auth) -> Call:
        header = request.headers.get("Authorization")
        if auth == "none":
            caller = ANONYMOUS
        else:
            caller = caller_of(self.ctx.config, header, allow_invalid=auth == "optional")
        if auth == "service" and not caller.is_service_role:
            raise StorageError.access_denied("Access denied: Invalid role", http_status=403)
        return Call(self.ctx, request, caller)


def create_app(config: LocalConfig) -> Any:
    return StorageApp(config)
