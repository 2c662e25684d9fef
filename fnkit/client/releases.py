"""The released API: `api/released/<function>.json`, and the check that a change keeps it.

`fnkit api release` writes each function's current document there (commit them with the
release); `fnkit api check` (run by `make test`) compares the documents the code makes now with
those files and fails listing every breaking change (`fnkit.client.breaking`). An additive
change passes without a release. A deliberate break is a new major version of the API: bump
`APP_VERSION`'s major, tell callers, and `fnkit api release --breaking` records it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from fnkit.client.breaking import breaking_changes
from fnkit.client.documents import load_documents, repo_root


def released_dir(root: Path | None = None) -> Path:
    return (root or repo_root()) / "api" / "released"


def read_released(directory: Path) -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))}


def check(
    current: dict[str, dict[str, Any]], released: dict[str, dict[str, Any]]
) -> dict[str, list[str]]:
    """Function name → its breaking changes (only functions that have some)."""
    found: dict[str, list[str]] = {}
    for name, old in released.items():
        new = current.get(name)
        problems = ["the function is gone"] if new is None else breaking_changes(old, new)
        if problems:
            found[name] = problems
    return found


def write_release(current: dict[str, dict[str, Any]], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, document in sorted(current.items()):
        path = directory / f"{name}.json"
        path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


def _report(found: dict[str, list[str]]) -> str:
    lines = [f"{name}: {problem}" for name, problems in found.items() for problem in problems]
    return "\n".join(lines)


def cmd_api(args: argparse.Namespace) -> int:
    functions = Path(args.functions).resolve() if args.functions else None
    current = load_documents(functions)
    directory = Path(args.released).resolve() if args.released else released_dir()
    found = check(current, read_released(directory))
    if args.action == "check":
        if found:
            count = sum(map(len, found.values()))
            print(f"fnkit: {count} breaking change(s) against {directory}:\n{_report(found)}")
            return 1
        print(f"fnkit: no breaking change against {directory} ({len(current)} functions)")
        return 0
    if found and not args.breaking:
        print(f"fnkit: not released, breaking changes (see --breaking):\n{_report(found)}")
        return 1
    for path in write_release(current, directory):
        print(f"fnkit: released {path}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    api = subparsers.add_parser("api", help="the released API documents and the breaking check")
    api.add_argument("action", choices=["check", "release"])
    api.add_argument("--breaking", action="store_true", help="release despite breaking changes")
    api.add_argument("--functions", help="functions folder (default: functions/)")
    api.add_argument("--released", help="baseline folder (default: api/released/)")
    api.set_defaults(run=cmd_api)
