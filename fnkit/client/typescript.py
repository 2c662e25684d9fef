"""`fnkit client typescript --out DIR`: types for every function and a thin typed client.

openapi-typescript (pinned with openapi-fetch and TypeScript in `tools/clients-ts`, installed
by `make clients-ts`) writes `functions.ts` from the functions' documents combined into one,
with `--default-non-nullable=false`: a field with a default is optional in a request body
(its default otherwise makes it required in the type). Beside it go `client.ts` (openapi-fetch
with the user's Supabase session) and `invoke.example.ts` (`supabase.functions.invoke` typed
with the same schemas). The files are ES modules for `"moduleResolution": "nodenext"` or a
bundler; `tsc --strict` accepts them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

_TEMPLATES = Path(__file__).with_name("templates")
FLAGS = ["--default-non-nullable=false"]


def tools_dir() -> Path:
    """Where `make clients-ts` installs the pinned generator, runtime and compiler (fnkit is
    installed editable from the checkout, so from any working directory)."""
    return Path(__file__).resolve().parents[2] / "tools" / "clients-ts"


def _tool(name: str) -> Path:
    found = tools_dir() / "node_modules" / ".bin" / name
    if not found.exists():
        raise FileNotFoundError(f"{found} is missing: run `make clients-ts` (npm ci, locked)")
    return found


def generate(document: dict[str, Any], out: Path) -> Path:
    """Write functions.ts, client.ts and invoke.example.ts to `out`."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fnkit-client-") as work:
        spec = Path(work, "openapi.json")
        spec.write_text(json.dumps(document))
        command = [str(_tool("openapi-typescript")), str(spec), "-o", str(out / "functions.ts")]
        done = subprocess.run(
            [*command, *FLAGS], capture_output=True, text=True, timeout=300, cwd=work
        )
    if done.returncode != 0:
        raise RuntimeError(f"openapi-typescript: {done.stdout}{done.stderr}".strip())
    shutil.copy(_TEMPLATES / "client.ts.tmpl", out / "client.ts")
    shutil.copy(_TEMPLATES / "invoke.example.ts.tmpl", out / "invoke.example.ts")
    return out
