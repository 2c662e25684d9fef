"""Every function's OpenAPI document, built from its route declarations without serving it.

The clients and the breaking-change check read the documents the code makes, not a running
server's: loading a function's `main.py` builds its routes (no connection is opened at import),
and `App.openapi()` is what `GET /functions/v1/<name>/openapi.json` answers. Settings a
function reads at import get the local-development defaults when the environment has none;
they do not show in a document.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def repo_root() -> Path:
    """The project around the working directory, else the checkout fnkit is installed from."""
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / "pyproject.toml").exists() and (candidate / "functions").is_dir():
            return candidate
    return Path(__file__).resolve().parents[2]


def load_documents(functions_dir: Path | None = None) -> dict[str, dict[str, Any]]:
    """Function name → its OpenAPI document, for every `functions/<name>/main.py`."""
    from fnkit.devenv import dev_environment, local_supabase_url
    from fnkit.devserver import discover, load

    directory = functions_dir or repo_root() / "functions"
    if not directory.is_dir():
        raise FileNotFoundError(f"no functions folder at {directory}")
    unused = "postgresql://postgres@127.0.0.1:5432/unused"
    for key, value in dev_environment(
        unused, "http://127.0.0.1:1", "unused", local_supabase_url()
    ).items():
        os.environ.setdefault(key, value)
    return {name: load(name, path).app.openapi() for name, path in discover(directory).items()}


def combined(documents: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """All functions in one document, for one client package: the /docs page's combination
    (`fnkit.docs_page.combine`), with a model name two functions define differently given
    as `<Function><Name>` (a generator cannot name a class `tasks.Task`)."""
    from fnkit.docs_page import combine

    versions = {doc.get("info", {}).get("version", "") for doc in documents.values()}
    document = combine(documents, version=max(versions) if versions else "0.0.0")
    schemas = document["components"]["schemas"]
    dotted = {name: _camel(name) for name in schemas if "." in name}
    if not dotted:
        return document
    clash = set(dotted.values()) & set(schemas)
    if clash:
        raise ValueError(f"model names clash across functions: {', '.join(sorted(clash))}")
    renamed: dict[str, Any] = _rename_refs(document, dotted)
    renamed["components"]["schemas"] = {
        dotted.get(name, name): schema for name, schema in renamed["components"]["schemas"].items()
    }
    return renamed


def _camel(dotted: str) -> str:
    function, name = dotted.split(".", 1)
    return "".join(part.capitalize() for part in function.split("_")) + name


def _rename_refs(node: Any, names: dict[str, str]) -> Any:
    prefix = "#/components/schemas/"
    if isinstance(node, dict):
        out = {key: _rename_refs(value, names) for key, value in node.items()}
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(prefix) and ref[len(prefix) :] in names:
            out["$ref"] = prefix + names[ref[len(prefix) :]]
        return out
    if isinstance(node, list):
        return [_rename_refs(item, names) for item in node]
    return node
