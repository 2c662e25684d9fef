"""`fnkit client python --out DIR`: one installable, typed Python package for every function.

openapi-python-client (pinned by the lock) writes it from the functions' documents combined
into one (`fnkit.client.documents.combined`). Its post-hooks are set here, with the lock's
ruff by path and only import sorting and formatting: its default `ruff check --fix` applies
whatever rules a ruff configuration around the output selects (one run here turned the client's
`*args: Any` into `object`, which `mypy --strict` refuses). Beside the
generated code goes `paging.py` (hand-written, checked with it): `unwrap` raises the typed
error envelope, `pages` follows the cursor.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

PACKAGE = "functions_client"
PROJECT = "functions-client"
_TEMPLATES = Path(__file__).with_name("templates")


def _config() -> str:
    ruff = Path(sys.executable).with_name("ruff")
    hooks = [f"{ruff} check . --fix-only --select=I,F401 --quiet", f"{ruff} format . --quiet"]
    lines = [
        f"project_name_override: {PROJECT}",
        f"package_name_override: {PACKAGE}",
        # enums as Literal["todo", ...]: `status="done"`, `sort="-created_at"` type-check as
        # written, instead of members named VALUE_1 for values that are no identifiers
        "literal_enums: true",
        "post_hooks:",
        *(f"  - {json.dumps(hook)}" for hook in hooks),
    ]
    return "\n".join(lines) + "\n"


def generate(document: dict[str, Any], out: Path) -> Path:
    """Write the package (a setuptools project: `pip install DIR`) to `out`; its import
    package is `out/functions_client`."""
    generator = Path(sys.executable).with_name("openapi-python-client")
    if out.exists():
        shutil.rmtree(out)
    with tempfile.TemporaryDirectory(prefix="fnkit-client-") as work:
        spec, config = Path(work, "openapi.json"), Path(work, "config.yaml")
        spec.write_text(json.dumps(document))
        config.write_text(_config())
        command = [str(generator), "generate", "--path", str(spec), "--config", str(config)]
        command += ["--meta", "setup", "--output-path", str(out)]
        env = {**os.environ, "PATH": f"{generator.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    if done.returncode != 0 or "Warning" in done.stdout + done.stderr:
        raise RuntimeError(f"openapi-python-client: {done.stdout}{done.stderr}".strip())
    shutil.copy(_TEMPLATES / "paging.py.tmpl", out / PACKAGE / "paging.py")
    _require_dateutil(out)
    return out / PACKAGE


def _require_dateutil(out: Path) -> None:
    """The generated models parse dates with python-dateutil; the generator's setup.py only
    lists it when it sees a date-time, so say it once for all."""
    setup = out / "setup.py"
    text = setup.read_text()
    if "python-dateutil" not in text:
        setup.write_text(text.replace('"attrs >= 22.2.0"', '"attrs >= 22.2.0", "python-dateutil"'))
