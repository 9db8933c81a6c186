"""The packages' import graphs point only down their layers (docs/architecture.md "Inside auth", mcp-proxy/README.md
"Modules"), and have no cycles.

Every `import` of a module counts, function-local and TYPE_CHECKING ones included: a reader should be able to trust
the layer list without reading every function.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Bottom layer first. A module belongs to the first entry naming it or a package above it. A module may import from
# its own layer (without cycles) and from layers below it, never from a layer above.
AUTH_LAYERS: list[list[str]] = [
    ["records", "keys", "sealing", "logs"],  # leaves: import nothing of the package
    ["oauth"],  # pure protocol decisions
    ["store"],  # the Store protocol, Redis, memory
    ["idp"],  # pure identity providers: no web framework, no store
    ["settings"],  # the typed settings, validated with the core's own parsers (oauth.urls, idp.allowlist)
    ["service"],  # the use cases: the only callers of the Store
    ["web"],  # routers: parse, call a service, render
    ["wiring", "app", "admin", "cli"],  # building the parts and the command line
]

# What a layer must never import, whatever its rank: the pure core knows no HTTP framework or storage, and the web
# reaches state only through the services.
AUTH_FORBIDDEN: dict[str, tuple[str, ...]] = {
    "oauth": ("fastapi", "starlette", "mcpgw_auth.store", "redis"),
    "idp": ("fastapi", "starlette", "mcpgw_auth.store", "mcpgw_auth.web", "redis"),
    "web": ("mcpgw_auth.store", "redis"),
}
# Fakes of external services live beside the interface they fake and are HTTP servers by nature (DESIGN.md §5.7).
FAKES = {"mcpgw_auth.idp.github_fake"}

# mcp-proxy/README.md "Modules" explains each layer.
PROXY_LAYERS: list[list[str]] = [
    ["catalog", "environment", "era", "jsonrpc", "logs", "metrics"],
    ["child", "config", "server"],
    ["checks", "session", "vault"],
    ["manager", "streaming"],
    ["stateless"],
    ["transport"],
    ["app"],
    ["cli"],
]

PACKAGES = {
    "mcpgw_auth": (ROOT / "auth" / "src" / "mcpgw_auth", AUTH_LAYERS, AUTH_FORBIDDEN),
    "mcpgw_proxy": (ROOT / "mcp-proxy" / "src" / "mcpgw_proxy", PROXY_LAYERS, {}),
}


def modules(package: str, src: Path) -> dict[str, Path]:
    found = {}
    for path in sorted(src.rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join((package, *parts))] = path
    return found


def imports(path: Path, module: str) -> Iterator[str]:
    """Every module named by an import statement anywhere in the file, resolved to an absolute name."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`


def layer_of(module: str, package: str, layers: list[list[str]]) -> int:
    relative = module.removeprefix(package).lstrip(".")
    for rank, names in enumerate(layers):
        if any(relative == name or relative.startswith(name + ".") for name in names):
            return rank
    if relative == "":
        return -1  # the package's own __init__: imports nothing of the package (checked below)
    raise AssertionError(f"{module} is in no layer: add it to the layer list in {__file__}")


def graph(package: str) -> dict[str, set[str]]:
    src, _, _ = PACKAGES[package]
    found = modules(package, src)
    edges: dict[str, set[str]] = {}
    for module, path in found.items():
        edges[module] = {name for name in imports(path, module) if name in found and name != module}
    return edges


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_every_import_points_down_or_sideways(package: str) -> None:
    _, layers, _ = PACKAGES[package]
    upward = []
    for module, targets in graph(package).items():
        rank = layer_of(module, package, layers)
        for target in targets:
            if layer_of(target, package, layers) > rank and not module.startswith(target + "."):
                upward.append(f"{module} -> {target}")
    assert not upward, "imports from a layer above:\n" + "\n".join(sorted(upward))


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_import_cycles(package: str) -> None:
    edges = graph(package)
    # A package imports its own submodules when they are imported; only module-to-module edges between distinct
    # files that are not parent packages of each other form real cycles.
    for module in edges:
        edges[module] = {t for t in edges[module] if not module.startswith(t + ".") and not t.startswith(module + ".")}
    state: dict[str, int] = {}
    cycles: list[str] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges[module]):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_forbidden_imports(package: str) -> None:
    src, _, forbidden = PACKAGES[package]
    found = []
    for module, path in modules(package, src).items():
        relative = module.removeprefix(package).lstrip(".")
        if module in FAKES:
            continue
        for layer, banned in forbidden.items():
            if relative == layer or relative.startswith(layer + "."):
                found += [
                    f"{module} -> {name}"
                    for name in set(imports(path, module))
                    if any(name == b or name.startswith(b + ".") for b in banned)
                ]
    assert not found, "imports a layer must not make:\n" + "\n".join(sorted(found))


def test_the_walker_sees_an_upward_import(tmp_path: Path) -> None:
    """The checks above can fail: a leaf importing the web layer is reported."""
    src = tmp_path / "pkg"
    (src / "web").mkdir(parents=True)
    (src / "__init__.py").write_text("")
    (src / "web" / "__init__.py").write_text("")
    (src / "records.py").write_text("def f():\n    from pkg.web import thing\n")
    (src / "web" / "thing.py").write_text("from pkg import records\n")
    PACKAGES["pkg"] = (src, [["records"], ["web"]], {})
    try:
        with pytest.raises(AssertionError, match=r"pkg\.records -> pkg\.web"):
            test_every_import_points_down_or_sideways("pkg")
        with pytest.raises(AssertionError, match="import cycles"):
            test_no_import_cycles("pkg")
    finally:
        del PACKAGES["pkg"]
