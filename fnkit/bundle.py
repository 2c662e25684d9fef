"""`fnkit bundle`: one deployable folder per function, holding only what that function needs.

`build/functions/<name>/` gets the function's own folder (its `main.py`), a copy of `shared/`
and a `requirements.txt`. The requirements come from the code, not from a list kept by hand:
the AST of `main.py` and of every `shared` module it reaches (transitively, including imports
deferred into function bodies, which is how `shared` keeps heavy clients such as supabase-py
off the cold start) gives the third-party modules; `importlib.metadata` maps them to the
installed distributions, together with what those distributions need in turn, each pinned to
the release and hashes of `requirements.lock` (the lock every install path uses, so the bundle
runs exactly what the tests ran). So `health`, which never imports `shared.supabase_admin`, does not
pull supabase-py, and a new import shows up in the next bundle by itself.

Imports under `if TYPE_CHECKING:` are not needed at run time and are skipped; an import inside
`try: ... except ImportError:` is optional and is kept only when it is installed. Extras come
from the project's own declaration (`psycopg[binary]`, `pyjwt[crypto]` in pyproject.toml), so
the bundle installs what the tests used (libpq in a wheel, ES256 support).
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata as metadata
import re
import shutil
import sys
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from fnkit import lock

__all__ = [
    "ALWAYS",
    "Bundle",
    "BundleError",
    "Pin",
    "Scan",
    "build",
    "build_all",
    "function_names",
    "requirements_for",
    "scan",
]

ALWAYS = ("functions-framework",)  # the entry point server; the runtime adds it otherwise
SHARED = "shared"
BUILD_DIR = Path("build") / "functions"
# The Cloud Run functions runtime the bundle targets (`--runtime python311`, Linux x86_64).
TARGET_MARKERS = {
    "python_version": "3.11",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "platform_machine": "x86_64",
}
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".pytest_cache")


class BundleError(RuntimeError):
    """The function cannot be bundled; the message names the file and the import."""


@dataclass
class Scan:
    """What a function reaches: its local files and the third-party modules they import."""

    local_files: list[Path] = field(default_factory=list)
    modules: dict[str, Path] = field(default_factory=dict)  # dotted name → first importer

    @property
    def uses(self) -> set[str]:
        """The `shared` modules reached, as dotted names (`shared.supabase_admin`)."""
        names = set()
        for path in self.local_files:
            parts = path.with_suffix("").parts
            if SHARED in parts:
                tail = parts[parts.index(SHARED) :]
                names.add(".".join(tail[:-1] if tail[-1] == "__init__" else tail))
        return names


@dataclass(frozen=True)
class Pin:
    """One line of requirements.txt."""

    name: str
    version: str | None
    extras: tuple[str, ...] = ()
    via: tuple[str, ...] = ()  # empty: imported by the function itself
    hashes: tuple[str, ...] = ()  # from the lock; pip then checks every download

    @property
    def spec(self) -> str:
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        return f"{self.name}{extras}" + (f"=={self.version}" if self.version else "")

    def line(self) -> str:
        text = self.spec + "".join(f" \\\n    --hash={h}" for h in self.hashes)
        if self.via:
            text += f"\n    # via {', '.join(self.via)}"
        elif self.version is None:
            text += "  # not installed where this bundle was made"
        return text


@dataclass(frozen=True)
class Bundle:
    name: str
    path: Path
    pins: tuple[Pin, ...]
    uses: frozenset[str]

    @property
    def direct(self) -> list[str]:
        return [pin.name for pin in self.pins if not pin.via]


# ---- reading imports ------------------------------------------------------------------------


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _catches_import_error(node: ast.Try) -> bool:
    names: list[str] = []
    for handler in node.handlers:
        kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        names += [k.id for k in kinds if isinstance(k, ast.Name)]
    return bool({"ImportError", "ModuleNotFoundError"} & set(names))


def _imports(tree: ast.AST, package: str) -> Iterator[tuple[str, bool]]:
    """(absolute dotted module name, optional) for every import that runs at some point.

    `from a import b` yields `a` and `a.b` (b may be a submodule); resolution decides.
    """

    def visit(node: ast.AST, optional: bool) -> Iterator[tuple[str, bool]]:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for statement in node.orelse:
                yield from visit(statement, optional)
            return
        if isinstance(node, ast.Try) and _catches_import_error(node):
            for statement in node.body:
                yield from visit(statement, True)
            rest: list[ast.AST] = [*node.handlers, *node.orelse, *node.finalbody]
            for other in rest:
                yield from visit(other, optional)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, optional
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(p for p in [*parent, base] if p)
            if base and base != "__future__":
                yield base, optional
                for alias in node.names:
                    if alias.name != "*":
                        yield f"{base}.{alias.name}", True  # only if it is a module
        for child in ast.iter_child_nodes(node):
            yield from visit(child, optional)

    yield from visit(tree, False)


def _local_file(name: str, roots: Iterable[Path]) -> Path | None:
    parts = name.split(".")
    for root in roots:
        base = root.joinpath(*parts)
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def scan(main: Path, shared_dir: Path) -> Scan:
    """Walk `main` and every local module it reaches; collect third-party imports."""
    function_dir = main.parent
    roots = (function_dir, shared_dir.parent)
    result = Scan()
    queue: list[tuple[Path, str]] = [(main, "")]
    seen: set[Path] = set()
    while queue:
        path, package = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        result.local_files.append(path)
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except SyntaxError as exc:
            raise BundleError(f"{path}: {exc}") from None
        for name, optional in _imports(tree, package):
            top = name.split(".")[0]
            if top in sys.stdlib_module_names:
                continue
            local_root = function_dir if _local_file(top, [function_dir]) else None
            if top == SHARED or local_root is not None:
                # Importing a.b.c runs a/__init__.py and a/b/__init__.py too.
                parts = name.split(".")
                for depth in range(1, len(parts) + 1):
                    dotted = ".".join(parts[:depth])
                    found = _local_file(dotted, roots)
                    if found is None:
                        if depth == len(parts) and not optional:
                            raise BundleError(f"{path}: imports {name}, which does not exist")
                        break
                    is_package = found.name == "__init__.py"
                    queue.append((found, dotted if is_package else dotted.rpartition(".")[0]))
                continue
            if _local_file(top, [shared_dir.parent]) is not None and not optional:
                raise BundleError(
                    f"{path}: imports {top}, which lives in the repository but is not bundled"
                    " (functions may import only shared/ and their own folder)"
                )
            if "." in name and optional:
                continue  # `from pkg import name`: pkg itself is recorded
            if optional and not _distributions(name):
                continue  # an optional import that is not installed here
            result.modules.setdefault(name, path)
    return result


# ---- from modules to pinned distributions ---------------------------------------------------


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@functools.cache
def _packages() -> Mapping[str, list[str]]:
    """Top-level import name → distributions (reads every installed RECORD: done once)."""
    return metadata.packages_distributions()


def _distributions(module: str) -> list[str]:
    """The installed distributions providing `module` (namespace packages: the one with it)."""
    top = module.split(".")[0]
    candidates = _packages().get(top, [])
    unique = sorted(set(candidates))
    if len(unique) <= 1:
        return unique
    prefix = "/".join(module.split("."))
    return [
        dist
        for dist in unique
        if any(str(f).startswith(prefix) for f in metadata.distribution(dist).files or [])
    ] or unique


def _project_extras(pyproject: Path) -> dict[str, tuple[str, ...]]:
    """Extras the project declares for its runtime dependencies (`psycopg[binary]`)."""
    from packaging.requirements import Requirement

    if not pyproject.is_file():
        return {}
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    extras: dict[str, tuple[str, ...]] = {}
    for spec in data.get("project", {}).get("dependencies", []):
        req = Requirement(spec)
        if req.extras:
            extras[_canonical(req.name)] = tuple(sorted(req.extras))
    return extras


def _installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def requirements_for(
    modules: Iterable[str],
    extras: dict[str, tuple[str, ...]] | None = None,
    locked: Mapping[str, lock.Locked] | None = None,
) -> list[Pin]:
    """Pins for the distributions providing `modules`, then everything those need.

    Markers are evaluated for the target runtime (CPython 3.11 on Linux). With `locked`, each
    pin is the lock's release with its hashes (a distribution the lock lacks is an error);
    without, the installed release.
    """
    from packaging.markers import default_environment
    from packaging.requirements import Requirement

    extras = extras or {}
    direct = {_canonical(n): set(extras.get(_canonical(n), ())) for n in ALWAYS}
    for module in modules:
        found = _distributions(module)
        if not found:
            raise BundleError(f"no installed distribution provides the module {module!r}")
        for dist in found:
            key = _canonical(dist)
            direct.setdefault(key, set()).update(extras.get(key, ()))

    environment = {key: str(value) for key, value in default_environment().items()}
    environment.update(TARGET_MARKERS)
    wanted: dict[str, set[str]] = {name: set(e) for name, e in direct.items()}
    via: dict[str, set[str]] = {}
    queue = list(direct)
    while queue:
        name = queue.pop()
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue
        active = ["", *sorted(wanted[name])]
        for spec in requires:
            req = Requirement(spec)
            if req.marker is not None and not any(
                req.marker.evaluate({**environment, "extra": extra}) for extra in active
            ):
                continue
            child = _canonical(req.name)
            new_extras = set(req.extras) - wanted.get(child, set())
            if child not in wanted or new_extras:
                wanted.setdefault(child, set()).update(req.extras)
                queue.append(child)
            if child not in direct:
                via.setdefault(child, set()).add(name)
    pins = [_pin(name, wanted[name], via.get(name, set()), locked) for name in wanted]
    return sorted(pins, key=lambda p: (bool(p.via), p.name))


def _pin(
    name: str, extras: set[str], via: set[str], locked: Mapping[str, lock.Locked] | None
) -> Pin:
    if locked is None:
        return Pin(name, _installed_version(name), tuple(sorted(extras)), tuple(sorted(via)))
    entry = locked.get(name)
    if entry is None:
        raise BundleError(f"{name} is needed but not in {lock.LOCK_FILE}: run `make lock`")
    return Pin(name, entry.version, tuple(sorted(extras)), tuple(sorted(via)), entry.hashes)


def render_requirements(name: str, pins: Iterable[Pin]) -> str:
    pins = list(pins)
    lines = [
        f"# Requirements of the `{name}` function, written by `fnkit bundle {name}`: only what it",
        f"# imports (directly or through shared/), pinned as {lock.LOCK_FILE} pins them.",
        "# Do not edit: change the code or pyproject.toml and bundle again.",
        "",
        *[pin.line() for pin in pins if not pin.via],
        "",
        "# needed by those",
        *[pin.line() for pin in pins if pin.via],
    ]
    return "\n".join(lines) + "\n"


# ---- writing bundles ------------------------------------------------------------------------


def function_names(root: Path) -> list[str]:
    return sorted(p.parent.name for p in (root / "functions").glob("*/main.py"))


def build(name: str, root: Path, out: Path | None = None) -> Bundle:
    """Write `<out>/<name>/` (default `build/functions/<name>/`) from nothing."""
    source = root / "functions" / name
    main = source / "main.py"
    if not main.is_file():
        known = ", ".join(function_names(root)) or "none"
        raise BundleError(f"no function named {name!r} (functions/{name}/main.py); known: {known}")
    shared_dir = root / SHARED
    found = scan(main, shared_dir)
    pins = requirements_for(
        found.modules, _project_extras(root / "pyproject.toml"), lock.read(root)
    )
    target = (out if out is not None else root / BUILD_DIR) / name
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=_IGNORE)
    (target / "requirements.txt").unlink(missing_ok=True)
    shutil.copytree(shared_dir, target / SHARED, ignore=_IGNORE)
    (target / "requirements.txt").write_text(render_requirements(name, pins), encoding="utf-8")
    _compile(target)
    (target / ".gcloudignore").write_text(".gcloudignore\n", encoding="utf-8")
    return Bundle(name, target, tuple(pins), frozenset(found.uses))


def _compile(target: Path) -> None:
    """Ship bytecode: without it every cold start compiles main.py and shared/ again (~15 ms of
    CPU measured here for tasks), because a container starts from the image, never from a
    warm `__pycache__`. Unchecked-hash pycs stay valid after the upload resets timestamps; the
    source never changes inside a deployed container. Compiled by this interpreter, for the
    runtime `fnkit deploy` names (python311): another Python's pycs would just be ignored."""
    import compileall
    import py_compile

    compileall.compile_dir(
        target,
        quiet=1,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )


def build_all(root: Path, names: Iterable[str] = (), out: Path | None = None) -> list[Bundle]:
    return [build(name, root, out) for name in (list(names) or function_names(root))]
