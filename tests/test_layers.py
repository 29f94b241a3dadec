"""The package layout is the architecture: one subpackage per layer, imports flowing one way.

    cli → commands → review → engine → {remote, providers} → manifest → state → images → errors/catalog
                                         (providers also → images; remote → state only)

Every module of ``assetgen`` is parsed with ``ast`` (imports at module level, in functions and under
``TYPE_CHECKING`` alike: each is a dependency), mapped to its layer, and checked against ``ALLOWED``.
Nothing imports ``cli`` (but ``__main__``) or ``testing`` (but the ``assetgen.emulator`` shim), no
two modules or subpackages import each other, and each third-party library stays in its home.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import assetgen
from assetgen.state.memos import code_stamp

PACKAGE = Path(assetgen.__file__).parent
BASE = "base"          # errors.py, catalog.py: the bottom, importing nothing of assetgen

# layer → the layers it may import (besides itself). A DAG: the order above.
ALLOWED: dict[str, set[str]] = {
    BASE: set(),
    "images": {BASE},
    "state": {BASE},
    "manifest": {BASE, "images", "state"},
    "remote": {BASE, "state"},
    "providers": {BASE, "images", "state", "manifest"},
    "engine": {BASE, "images", "state", "manifest", "remote", "providers"},
    "review": {BASE, "images", "state", "manifest", "remote", "providers", "engine"},
    "commands": {BASE, "images", "state", "manifest", "remote", "providers", "engine", "review"},
    "cli": {BASE, "images", "state", "manifest", "remote", "providers", "engine", "review", "commands"},
    "testing": {BASE},
    # the public facade (``assetgen/__init__.py``: lazy re-exports) and the two entry shims
    "api": {BASE, "manifest", "engine", "commands"},
    "main": {"cli"},
    "emulator": {"testing"},
}
LAYER_OF_TOP_MODULE = {"errors": BASE, "catalog": BASE, "__main__": "main", "": "api"}

# third-party library → the only places (path prefixes inside assetgen/) that may import it
HOMES: dict[str, tuple[str, ...]] = {
    "httpx": ("providers/client.py", "providers/vendorclient.py"),
    "click": ("cli/",),
    "rich": ("cli/",),
    "fsspec": ("remote/",),
    "PIL": ("images/", "review/", "testing/"),
    "pydantic": ("manifest/schema.py",),
}


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> tuple[set[str], set[str]]:
    """(assetgen modules ``name`` imports, top-level third-party packages it imports), from every
    import statement anywhere in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    internal: set[str] = set()
    external: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                (internal if alias.name.split(".")[0] == "assetgen" else external).add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != "assetgen":
                external.add(base)
                continue
            for alias in node.names:            # ``from . import catalog`` imports the module catalog
                internal.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    resolved = set()
    for target in internal:
        while target not in MODULES:            # ``import assetgen.cli.main`` → its module
            target = target.rpartition(".")[0]
        resolved.add(target)
    return resolved - {name}, {e.split(".")[0] for e in external if e != "__future__"}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def layer(module: str) -> str:
    parts = module.split(".")[1:]
    if len(parts) >= 1 and (PACKAGE / parts[0]).is_dir():
        return parts[0]
    return LAYER_OF_TOP_MODULE[parts[0] if parts else ""]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            members = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                members.append(top)
                if top == node:
                    break
            if len(members) > 1:
                found.append(sorted(members))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_module_has_a_layer() -> None:
    assert {layer(m) for m in MODULES} <= set(ALLOWED)
    assert not _cycles({k: {v for v in vs if v != k} for k, vs in
                        {k: ALLOWED[k] for k in ALLOWED}.items()}), "ALLOWED itself must be a DAG"


def test_imports_flow_one_way() -> None:
    wrong = [f"{module} ({layer(module)}) imports {target} ({layer(target)})"
             for module, (targets, _external) in sorted(GRAPH.items()) for target in sorted(targets)
             if layer(target) != layer(module) and layer(target) not in ALLOWED[layer(module)]]
    assert wrong == []


def test_nothing_imports_cli_or_testing() -> None:
    importers = {module for module, (targets, _ext) in GRAPH.items()
                 if any(layer(t) in ("cli", "testing") and layer(t) != layer(module) for t in targets)}
    assert importers == {"assetgen.__main__", "assetgen.emulator", "assetgen.emulator.__main__"}


def test_no_import_cycles_between_modules() -> None:
    assert _cycles({module: targets for module, (targets, _ext) in GRAPH.items()}) == []


def test_no_import_cycles_between_subpackages() -> None:
    layers: dict[str, set[str]] = {}
    for module, (targets, _ext) in GRAPH.items():
        layers.setdefault(layer(module), set()).update(layer(t) for t in targets if layer(t) != layer(module))
    assert _cycles(layers) == []


def test_third_party_libraries_stay_home() -> None:
    strays = []
    for module, (_targets, external) in sorted(GRAPH.items()):
        where = MODULES[module].relative_to(PACKAGE).as_posix()
        for library, homes in HOMES.items():
            if library in external and not where.startswith(homes):
                strays.append(f"{where} imports {library} (home: {', '.join(homes)})")
    assert strays == []


def test_code_stamp_covers_every_module() -> None:
    """The remembered loads' invalidation stamp follows the package, not a hand-kept list."""
    stamp = code_stamp()
    assert stamp is not None
    expected = sorted(path.relative_to(PACKAGE).as_posix() for path in PACKAGE.rglob("*.py"))
    assert [name for name, _size, _mtime in stamp] == expected
    assert all(size == os.stat(PACKAGE / name).st_size for name, size, _mtime in stamp)


def test_public_api_is_a_literal_list_of_what_is_exported() -> None:
    assert assetgen.__all__ == sorted(assetgen._EXPORTS)
    assert all(getattr(assetgen, name) is not None for name in assetgen.__all__)
