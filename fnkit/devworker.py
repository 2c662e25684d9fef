"""The process that serves the functions for `fnkit dev` (see `fnkit.devreload`).

`python -m fnkit.devworker FD PORT ROOT`: serve every function of ROOT/functions on the
listening socket FD inherited from `fnkit dev`, with the settings of its environment. When
SUPABASE_URL is this server's own base URL, the local Supabase services are
served beside the functions through one gateway (`fnkit.local`), as Supabase serves them: Auth,
Storage and Realtime. The worker is replaced on every reload, and Realtime's threads and slot go
with the process (its slot is temporary).
When a function fails to import (a typo being typed), the error is printed and every request
answers 500 with it until the next save reloads the worker.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from werkzeug.serving import make_server
from werkzeug.wrappers import Response

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


def with_local_services(app: WSGIApplication, port: int, root: Path) -> WSGIApplication:
    """The functions app, behind the local Supabase's gateway when this server is Supabase."""
    from fnkit.devenv import local_supabase_url

    base_url = local_supabase_url(port)
    if os.environ.get("SUPABASE_URL", "").rstrip("/") != base_url:
        return app
    from fnkit.local.config import LocalConfig
    from fnkit.local.gateway import create_gateway, service_mounts

    config = LocalConfig.from_env(base_url, os.environ["DATABASE_URL"], root / ".fnkit")
    mounts = service_mounts(config)
    served = ", ".join(f"{base_url}{prefix}" for prefix in mounts)
    print(f"fnkit: local Supabase (for development only, loopback): {served}", flush=True)
    return create_gateway(app, mounts)


def main(argv: list[str]) -> None:
    fd, port, root = int(argv[0]), int(argv[1]), Path(argv[2])
    from fnkit.devserver import create_app

    try:
        functions = create_app(root / "functions")
        app = with_local_services(functions, port, root)
    except Exception as exc:
        message = f"fnkit: the functions failed to load: {type(exc).__name__}: {exc}"
        print(message, flush=True)
        broken = Response(message + "\n", status=500, content_type="text/plain")
        make_server("127.0.0.1", port, broken, threaded=True, fd=fd).serve_forever()
        return
    server = make_server("127.0.0.1", port, app, threaded=True, fd=fd)
    names = ", ".join(sorted(functions.config["HANDLERS"]))
    print(f"fnkit: functions at http://127.0.0.1:{port}/functions/v1/<name>: {names}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
