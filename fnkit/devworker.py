"""The process that serves the functions for `fnkit dev` (see `fnkit.devreload`).

`python -m fnkit.devworker FD PORT ROOT`: serve every function of ROOT/functions on the
listening socket FD inherited from `fnkit dev`, with the settings of its environment. When
a function fails to import (a typo being typed), the error is printed and every request
answers 500 with it until the next save reloads the worker.
"""

from __future__ import annotations

import sys
from pathlib import Path

from werkzeug.serving import make_server
from werkzeug.wrappers import Response


def main(argv: list[str]) -> None:
    fd, port, root = int(argv[0]), int(argv[1]), Path(argv[2])
    from fnkit.devserver import create_app

    try:
        app = create_app(root / "functions")
    except Exception as exc:
        message = f"fnkit: the functions failed to load: {type(exc).__name__}: {exc}"
        print(message, flush=True)
        broken = Response(message + "\n", status=500, content_type="text/plain")
        make_server("127.0.0.1", port, broken, threaded=True, fd=fd).serve_forever()
        return
    server = make_server("127.0.0.1", port, app, threaded=True, fd=fd)
    names = ", ".join(sorted(app.config["HANDLERS"]))
    print(f"fnkit: functions at http://127.0.0.1:{port}/functions/v1/<name>: {names}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
