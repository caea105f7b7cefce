"""The layering of docs/ARCHITECTURE.md, kept by a test rather than by memory.

Rules, checked on the import statements of every module under src/hubbub (with `ast`, so
imports under `if TYPE_CHECKING:` and inside functions count too):

1. `protocol/` imports nothing of ours outside `protocol/`.
2. `domain/` imports nothing of ours outside `domain/` and `protocol/`.
3. `protocol/`, `domain/` and `services/` import no driver and no web framework.
4. `services/` do not import `transport/` (the web layer sits above them).
5. Only the composition roots (`app.py`, `cli.py`, and `copydb.py`, the command that opens
   two databases itself) import a concrete adapter: a storage, bus or coordination module
   other than the seams (`storage.base`, `bus.base`, `bus.envelope`). An adapter package
   may import its own modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "hubbub"

# Third-party modules that are I/O drivers or the web framework.
DRIVERS = frozenset({"aiohttp", "sqlalchemy", "alembic", "asyncpg", "aiosqlite", "psycopg",
                     "psycopg2", "redis", "websockets", "uvloop", "prometheus_client"})
# Adapter packages, and the seam modules in them that anyone may import.
ADAPTERS: dict[str, frozenset[str]] = {
    "hubbub.storage": frozenset({"hubbub.storage.base"}),
    "hubbub.bus": frozenset({"hubbub.bus.base", "hubbub.bus.envelope"}),
    "hubbub.coordination": frozenset(),
}
COMPOSITION_ROOTS = frozenset({"hubbub.app", "hubbub.cli", "hubbub.__main__", "hubbub.copydb"})


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str) -> bool:
    base = SRC.joinpath(*name.split("."))
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def imports_of(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every module an import statement names; `from a import b` counts `a.b` when `b` is a
    module, else `a`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if is_module(candidate) else base)
    return found


def source_tree() -> dict[str, set[str]]:
    """`{module: imported modules}` for every module of the package."""
    return {
        module_name(path): imports_of(path.read_text(), module_name(path),
                                      path.name == "__init__.py")
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def in_package(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def adapter_of(module: str) -> str | None:
    """The adapter package a module belongs to, if it is a concrete adapter."""
    for package, seams in ADAPTERS.items():
        if in_package(module, package) and module not in seams:
            return package
    return None


def broken_rule(module: str, target: str) -> str | None:
    """Why importing `target` from `module` breaks a rule, or None when it is fine."""
    ours = in_package(target, "hubbub")
    layer = next((name for name in ("protocol", "domain", "services", "transport")
                  if in_package(module, f"hubbub.{name}")), None)
    if layer == "protocol" and ours and not in_package(target, "hubbub.protocol"):
        return "protocol/ imports only protocol/"
    if layer == "domain" and ours and not (in_package(target, "hubbub.domain")
                                           or in_package(target, "hubbub.protocol")):
        return "domain/ imports only domain/ and protocol/"
    if layer in ("protocol", "domain", "services") and target.split(".")[0] in DRIVERS:
        return "a driver or the web framework"
    if layer == "services" and in_package(target, "hubbub.transport"):
        return "services/ sit below transport/"
    package = adapter_of(target) if ours else None
    if (package is not None and module not in COMPOSITION_ROOTS
            and not in_package(module, package)):
        return "only app.py and cli.py import concrete adapters"
    return None


def violations(tree: dict[str, set[str]]) -> list[str]:
    """Every import that breaks a rule of the module docstring."""
    found: list[str] = []
    for module, imported in sorted(tree.items()):
        for target in sorted(imported):
            why = broken_rule(module, target)
            if why is not None:
                found.append(f"{module} imports {target}: {why}")
    return found


def test_the_source_tree_keeps_its_layers() -> None:
    """No module of hubbub breaks a layering rule."""
    assert violations(source_tree()) == []


def test_the_walker_sees_the_imports() -> None:
    """The walk finds what is there, so an empty result above means something."""
    tree = source_tree()
    assert {"hubbub.protocol.codec", "hubbub.domain.permissions", "hubbub.services.messages",
            "hubbub.app"} <= set(tree)
    assert "hubbub.storage" in tree["hubbub.app"]
    assert "hubbub.protocol.objects" in tree["hubbub.domain.permissions"]
    assert "hubbub.domain.validation" in tree["hubbub.services.messages"]
    assert "hubbub.storage.base" in tree["hubbub.services.membership"]


def test_relative_imports_are_resolved() -> None:
    """`from . import x` and `from ..y import z` name the modules they reach."""
    found = imports_of("from ..storage import sql\nfrom . import client\n",
                       "hubbub.protocol.codec")
    assert found == {"hubbub.storage.sql", "hubbub.protocol.client"}
    assert imports_of("from .memory import MemoryBus\n", "hubbub.bus", is_package=True) == {
        "hubbub.bus.memory"}


@pytest.mark.parametrize(("module", "target"), [
    ("hubbub.protocol.codec", "hubbub.domain.errors"),
    ("hubbub.protocol.client", "hubbub.services.context"),
    ("hubbub.domain.models", "hubbub.services.views"),
    ("hubbub.domain.tokens", "hubbub.transport.auth"),
    ("hubbub.domain.clock", "hubbub.storage.base"),
    ("hubbub.services.messages", "sqlalchemy"),
    ("hubbub.services.messages", "sqlalchemy.ext.asyncio"),
    ("hubbub.services.presence", "redis.asyncio"),
    ("hubbub.services.users", "aiohttp"),
    ("hubbub.services.users", "asyncpg"),
    ("hubbub.services.users", "aiosqlite"),
    ("hubbub.services.events", "hubbub.transport.hub"),
    ("hubbub.services.membership", "hubbub.storage.sql"),
    ("hubbub.services.events", "hubbub.bus.memory"),
    ("hubbub.transport.session", "hubbub.bus.redis"),
    ("hubbub.transport.rest", "hubbub.storage"),
    ("hubbub.transport.server", "hubbub.coordination.redis"),
    ("hubbub.bus.redis", "hubbub.storage.sql"),
])
def test_each_rule_catches_a_violation(module: str, target: str) -> None:
    """A made-up import that breaks a rule is reported."""
    assert violations({module: {target}}) != []


@pytest.mark.parametrize(("module", "target"), [
    ("hubbub.domain.models", "hubbub.protocol.objects"),
    ("hubbub.services.membership", "hubbub.storage.base"),
    ("hubbub.services.events", "hubbub.bus.base"),
    ("hubbub.services.events", "hubbub.bus.envelope"),
    ("hubbub.transport.rest", "hubbub.storage.base"),
    ("hubbub.transport.websocket", "aiohttp"),
    ("hubbub.app", "hubbub.storage"),
    ("hubbub.app", "hubbub.coordination.redis"),
    ("hubbub.cli", "hubbub.storage"),
    ("hubbub.storage", "hubbub.storage.sql"),
    ("hubbub.bus", "hubbub.bus.redis"),
    ("hubbub.domain.tokens", "jwt"),
])
def test_allowed_imports_pass(module: str, target: str) -> None:
    """Seams, the composition root and an adapter's own modules are fine."""
    assert violations({module: {target}}) == []
