"""`fnkit client python|typescript --out DIR`, registered on the `fnkit` command line."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_client(args: argparse.Namespace) -> int:
    from fnkit.client.documents import combined, load_documents

    document = combined(load_documents())
    out = Path(args.out).resolve()
    if args.language == "python":
        from fnkit.client import python

        package = python.generate(document, out)
        print(f"fnkit: Python client in {out} (import {package.name}; pip install {out})")
    else:
        from fnkit.client import typescript

        typescript.generate(document, out)
        print(f"fnkit: TypeScript client in {out} (functions.ts, client.ts, invoke.example.ts)")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    client = subparsers.add_parser("client", help="generate a typed client for every function")
    client.add_argument("language", choices=["python", "typescript"])
    client.add_argument("--out", required=True, help="the folder to write (replaced if present)")
    client.set_defaults(run=cmd_client)


def register_all(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`fnkit client` and `fnkit api` (fnkit/cli.py calls this once)."""
    from fnkit.client.releases import register as register_api

    register(subparsers)
    register_api(subparsers)
