"""The layering of docs/ARCHITECTURE.md, kept by a test rather than by memory.

Rules, checked on the import statements of every module under src/hubbub (with `ast`, so
imports under `if TYPE_CHECKING:` and inside functions count too):

1. `protocol/` imports nothing of ours outside `protocol/`, but `domain/limits.py`: the
   bounds the wire types enforce, a module that itself imports nothing.
2. `domain/` imports nothing of ours outside `domain/` and `protocol/`.
3. `protocol/`, `domain/`, `services/`, `delivery/` and the seams (`storage/`, `bus/`,
   `coordination/`) import no driver and no web framework.
4. `services/` import neither `delivery/` nor `transport/`; `delivery/` (the hub and
   the outboxes) does not import `transport/`; the seams and the adapters import none of
   `services/`, `delivery/` and `transport/` (they sit below all three).
5. Only the composition root (`app.py`, `cli.py`) imports an adapter (`adapters/…`). An
   adapter may import another (the Redis ones fall back to the memory ones).
6. No import cycle among the imports that run when a module is imported: module level,
   `if TYPE_CHECKING:` left out (it never runs; it is how a module names the type of one
   that imports it, which needs no import at run time with postponed annotations).

And at run time, which the statements alone cannot prove (a package's `__init__` pulls in
whatever it imports): importing a seam package, a service or a delivery module in a fresh
interpreter loads no driver.

Sizes (STYLE.md: small modules with one job): no module over MAX_MODULE_LINES, no
function over MAX_FUNCTION_LINES, but the few exceptions listed with their reason.
"""

from __future__ import annotations

import ast
import graphlib
import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "hubbub"

# Third-party modules that are I/O drivers or the web framework.
DRIVERS = frozenset({"aiohttp", "sqlalchemy", "alembic", "asyncpg", "aiosqlite", "psycopg",
                     "psycopg2", "redis", "websockets", "uvloop", "prometheus_client"})
# What importing a seam or a service must not load (the list).
HEAVY = ("sqlalchemy", "redis", "aiohttp", "asyncpg", "aiosqlite")
SEAMS = ("hubbub.storage", "hubbub.bus", "hubbub.coordination")
ADAPTERS = "hubbub.adapters"
COMPOSITION_ROOTS = frozenset({"hubbub.app", "hubbub.cli", "hubbub.__main__"})
# The one module of ours protocol/ may read besides its own: numbers, no imports.
LIMITS = "hubbub.domain.limits"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str) -> bool:
    base = SRC.joinpath(*name.split("."))
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def imports_of(source: str, module: str, is_package: bool = False,
               at_import: bool = False) -> set[str]:
    """Every module an import statement names; `from a import b` counts `a.b` when `b` is a
    module, else `a`. `at_import`: only the statements that run when the module is
    imported (not in functions, not under `if TYPE_CHECKING:`)."""
    found: set[str] = set()
    for node in _statements(ast.parse(source).body) if at_import else ast.walk(
            ast.parse(source)):
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


def _statements(body: Iterable[ast.stmt]) -> Iterable[ast.stmt]:
    """The statements that run at import: into blocks and class bodies, not functions."""
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _statements(node.orelse)
            continue
        for field in ("body", "orelse", "finalbody", "handlers"):
            inner = getattr(node, field, None)
            if isinstance(inner, list):
                yield from _statements(inner)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def source_tree(at_import: bool = False) -> dict[str, set[str]]:
    """`{module: imported modules}` for every module of the package."""
    return {
        module_name(path): imports_of(path.read_text(), module_name(path),
                                      path.name == "__init__.py", at_import)
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def in_package(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def is_adapter(module: str) -> bool:
    return in_package(module, ADAPTERS)


def is_seam(module: str) -> bool:
    return not is_adapter(module) and any(in_package(module, seam) for seam in SEAMS)


def broken_rule(module: str, target: str) -> str | None:
    """Why importing `target` from `module` breaks a rule, or None when it is fine."""
    ours = in_package(target, "hubbub")
    layer = next((name for name in ("protocol", "domain", "services", "delivery",
                                    "transport")
                  if in_package(module, f"hubbub.{name}")), None)
    if layer == "protocol" and ours and not (in_package(target, "hubbub.protocol")
                                             or target == LIMITS):
        return "protocol/ imports only protocol/ (and domain/limits.py)"
    if module == LIMITS and (ours or target != "__future__"):
        return "domain/limits.py imports nothing"
    if layer == "domain" and ours and not (in_package(target, "hubbub.domain")
                                           or in_package(target, "hubbub.protocol")):
        return "domain/ imports only domain/ and protocol/"
    above_services = in_package(target, "hubbub.delivery") or in_package(
        target, "hubbub.transport")
    if ((layer in ("protocol", "domain", "services", "delivery") or is_seam(module))
            and target.split(".")[0] in DRIVERS):
        return "a driver or the web framework"
    if layer == "services" and above_services:
        return "services/ sit below delivery/ and transport/"
    if layer == "delivery" and in_package(target, "hubbub.transport"):
        return "delivery/ sits below transport/"
    if (is_seam(module) or is_adapter(module)) and (
            in_package(target, "hubbub.services") or above_services):
        return "seams and adapters sit below services/, delivery/ and transport/"
    if (ours and is_adapter(target) and module not in COMPOSITION_ROOTS
            and not is_adapter(module)):
        return "only app.py and cli.py import adapters"
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


def import_graph(tree: dict[str, set[str]]) -> dict[str, set[str]]:
    """`{module: our modules it imports}`, each with the packages importing it runs first
    (`import a.b.c` runs `a/b/__init__.py`), but not the importer's own packages (already
    being imported by then)."""
    graph: dict[str, set[str]] = {}
    for module, imported in tree.items():
        edges = graph.setdefault(module, set())
        for target in imported:
            if not in_package(target, "hubbub"):
                continue
            parts = target.split(".")
            for end in range(2, len(parts) + 1):
                package = ".".join(parts[:end])
                if not in_package(module, package):
                    edges.add(package)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of `graph` (its first module repeated at the end), or None."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return None


def test_the_source_tree_keeps_its_layers() -> None:
    """No module of hubbub breaks a layering rule."""
    assert violations(source_tree()) == []


def test_the_walker_sees_the_imports() -> None:
    """The walk finds what is there, so an empty result above means something."""
    tree = source_tree()
    assert {"hubbub.protocol.codec", "hubbub.domain.permissions", "hubbub.services.messages",
            "hubbub.app", "hubbub.adapters.redis.counts", "hubbub.coordination.typing"} <= set(
        tree)
    assert "hubbub.storage" in tree["hubbub.app"]
    assert "hubbub.adapters.memory.bus" in tree["hubbub.app"]
    assert "hubbub.adapters.redis.bus" in tree["hubbub.app"]  # inside a function
    assert "hubbub.protocol.objects" in tree["hubbub.domain.permissions"]
    assert "hubbub.domain.validation" in tree["hubbub.services.messages"]
    assert "hubbub.storage.members" in tree["hubbub.services.membership"]
    assert "hubbub.adapters.sql" in tree["hubbub.app"]
    assert "hubbub.coordination.typing" in tree["hubbub.services.typing"]


def test_relative_imports_are_resolved() -> None:
    """`from . import x` and `from ..y import z` name the modules they reach."""
    found = imports_of("from ..domain import models\nfrom . import client\n",
                       "hubbub.protocol.codec")
    assert found == {"hubbub.domain.models", "hubbub.protocol.client"}
    assert imports_of("from .topics import CONTROL\n", "hubbub.bus", is_package=True) == {
        "hubbub.bus.topics"}


@pytest.mark.parametrize(("module", "target"), [
    ("hubbub.protocol.codec", "hubbub.domain.errors"),
    ("hubbub.protocol.client", "hubbub.services.context"),
    ("hubbub.protocol.client", "hubbub.domain.errors"),
    ("hubbub.domain.limits", "hubbub.protocol.objects"),
    ("hubbub.domain.limits", "math"),
    ("hubbub.domain.models", "hubbub.services.views"),
    ("hubbub.domain.tokens", "hubbub.transport.auth"),
    ("hubbub.domain.clock", "hubbub.storage.members"),
    ("hubbub.services.messages", "sqlalchemy"),
    ("hubbub.services.messages", "sqlalchemy.ext.asyncio"),
    ("hubbub.services.presence", "redis.asyncio"),
    ("hubbub.services.users", "aiohttp"),
    ("hubbub.services.users", "asyncpg"),
    ("hubbub.services.users", "aiosqlite"),
    ("hubbub.services.events", "hubbub.delivery.hub"),
    ("hubbub.services.membership", "hubbub.adapters.sql.members"),
    ("hubbub.services.membership", "hubbub.adapters.sql"),
    ("hubbub.services.messages", "hubbub.adapters.sql.messages"),
    ("hubbub.services.events", "hubbub.adapters.memory.bus"),
    ("hubbub.services.typing", "hubbub.adapters.redis.typing"),
    ("hubbub.transport.session", "hubbub.adapters.redis.bus"),
    ("hubbub.transport.server", "hubbub.adapters.redis.client"),
    ("hubbub.transport.rest", "hubbub.adapters.sql"),
    ("hubbub.bus", "hubbub.adapters.redis.bus"),
    ("hubbub.bus.topics", "redis"),
    ("hubbub.storage.users", "sqlalchemy"),
    ("hubbub.storage.messages", "hubbub.adapters.sql.messages"),
    ("hubbub.adapters.sql.users", "hubbub.transport.rest"),
    ("hubbub.coordination.presence", "hubbub.adapters.memory.presence"),
    ("hubbub.coordination.typing", "hubbub.services.typing"),
    ("hubbub.coordination", "aiohttp"),
    ("hubbub.bus.envelope", "hubbub.delivery.hub"),
    ("hubbub.adapters.redis.bus", "hubbub.delivery.hub"),
    ("hubbub.adapters.memory.typing", "hubbub.services.typing"),
    ("hubbub.adapters.sql.writer", "hubbub.transport.metrics"),
    ("hubbub.services.joining", "hubbub.delivery.hub"),
    ("hubbub.services.messages", "hubbub.transport.websocket.actions"),
    ("hubbub.delivery.hub", "hubbub.transport.metrics"),
    ("hubbub.delivery.outbox", "aiohttp"),
    ("hubbub.storage.messages", "hubbub.delivery.connection"),
])
def test_each_rule_catches_a_violation(module: str, target: str) -> None:
    """A made-up import that breaks a rule is reported."""
    assert violations({module: {target}}) != []


@pytest.mark.parametrize(("module", "target"), [
    ("hubbub.domain.models", "hubbub.protocol.objects"),
    ("hubbub.protocol.objects", "hubbub.domain.limits"),
    ("hubbub.domain.limits", "__future__"),
    ("hubbub.services.membership", "hubbub.storage.members"),
    ("hubbub.storage.messages", "hubbub.domain.models"),
    ("hubbub.adapters.sql.messages", "hubbub.storage.messages"),
    ("hubbub.adapters.sql.messages", "sqlalchemy"),
    ("hubbub.services.events", "hubbub.bus.base"),
    ("hubbub.services.events", "hubbub.bus.topics"),
    ("hubbub.services.typing", "hubbub.coordination.typing"),
    ("hubbub.transport.rest", "hubbub.storage.errors"),
    ("hubbub.transport.websocket.endpoint", "aiohttp"),
    ("hubbub.transport.websocket.actions", "hubbub.delivery.hub"),
    ("hubbub.delivery.hub", "hubbub.services.changes"),
    ("hubbub.delivery.hub", "hubbub.bus.topics"),
    ("hubbub.app", "hubbub.storage"),
    ("hubbub.app", "hubbub.adapters.redis.client"),
    ("hubbub.cli", "hubbub.adapters.sql"),
    ("hubbub.adapters.redis.counts", "redis.asyncio"),
    ("hubbub.adapters.redis.counts", "hubbub.adapters.redis.client"),
    ("hubbub.adapters.redis.typing", "hubbub.adapters.memory.typing"),
    ("hubbub.adapters.memory.typing", "hubbub.coordination.typing"),
    ("hubbub.adapters.redis.bus", "hubbub.bus.topics"),
    ("hubbub.coordination.tickets", "hubbub.domain.tokens"),
    ("hubbub.domain.tokens", "jwt"),
])
def test_allowed_imports_pass(module: str, target: str) -> None:
    """Seams, the composition root and the adapters among themselves are fine."""
    assert violations({module: {target}}) == []


# -- import cycles -------------------------------------------------------------------------


def test_the_package_has_no_import_cycle() -> None:
    """No module imports, through any chain of imports that run, a module importing it."""
    assert find_cycle(import_graph(source_tree(at_import=True))) is None


def test_the_doors_have_no_cycle_even_through_type_checking_imports() -> None:
    """Among services/, delivery/ and transport/ no module names, even only for its types
    (`if TYPE_CHECKING:`) or inside a function, one that imports it: each part gets what it
    uses from app.py instead of reaching back for the record that holds it."""
    doors = ("hubbub.services", "hubbub.delivery", "hubbub.transport")
    tree = {module: {t for t in imported if any(in_package(t, d) for d in doors)}
            for module, imported in source_tree().items()
            if any(in_package(module, d) for d in doors)}
    assert find_cycle(import_graph(tree)) is None


def test_a_cycle_is_found() -> None:
    """Three modules importing each other in a ring are reported, and a chain is not."""
    ring = {"hubbub.a": {"hubbub.b"}, "hubbub.b": {"hubbub.c"}, "hubbub.c": {"hubbub.a"}}
    cycle = find_cycle(ring)
    assert cycle is not None
    assert set(cycle) == {"hubbub.a", "hubbub.b", "hubbub.c"}
    assert find_cycle({"hubbub.a": {"hubbub.b"}, "hubbub.b": {"hubbub.c"}}) is None


def test_a_cycle_through_a_package_init_is_found() -> None:
    """Importing `hubbub.x.y` runs `hubbub/x/__init__.py` first: a cycle through it counts,
    while a module's own package does not close one."""
    tree = {"hubbub.x": {"hubbub.z"}, "hubbub.x.y": set(), "hubbub.z": {"hubbub.x.y"}}
    assert find_cycle(import_graph(tree)) is not None
    own = {"hubbub.x": {"hubbub.x.y"}, "hubbub.x.y": {"hubbub.x.w"}, "hubbub.x.w": set()}
    assert find_cycle(import_graph(own)) is None


def test_only_imports_that_run_at_import_count_for_cycles() -> None:
    """Imports in functions and under `if TYPE_CHECKING:` are left out; those in blocks
    and class bodies count."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "import hubbub.logs\n"
        "if TYPE_CHECKING:\n    from hubbub.transport.session import Session\n"
        "else:\n    import hubbub.config\n"
        "try:\n    import hubbub.notify\nexcept ImportError:\n    pass\n"
        "class A:\n    from hubbub.domain import clock\n"
        "def f():\n    import hubbub.app\n"
    )
    assert imports_of(source, "hubbub.x", at_import=True) == {
        "typing", "hubbub.logs", "hubbub.config", "hubbub.notify", "hubbub.domain.clock"}
    assert {"hubbub.transport.session", "hubbub.app"} <= imports_of(source, "hubbub.x")


# -- what importing a seam or a service loads ----------------------------------------------


def _seams_and_services() -> list[str]:
    modules = sorted(m for m in source_tree() if in_package(m, "hubbub.services")
                     or in_package(m, "hubbub.delivery"))
    return [*SEAMS, *modules]


# Run in a fresh interpreter: refuses every heavy package, noting which of our modules
# asked for it, so that a case stops at the first one instead of paying for its import.
_PROBE = """
import importlib, importlib.abc, json, sys
heavy, module, asked = set(json.loads(sys.argv[1])), sys.argv[2], {}

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top not in heavy:
            return None
        chain, frame = [], sys._getframe(1)
        while frame is not None:
            caller = frame.f_globals.get("__name__", "")
            if caller.startswith("hubbub") and caller not in chain:
                chain.append(caller)
            frame = frame.f_back
        asked.setdefault(top, list(reversed(chain)))
        raise ImportError(top + " refused by the layering test")

sys.meta_path.insert(0, Refuse())
try:
    importlib.import_module(module)
except Exception:
    pass  # a refused import: noted above
asked.update({name: [] for name in heavy if name in sys.modules and name not in asked})
print(json.dumps(asked))
"""


def drivers_loaded_by(module: str) -> dict[str, list[str]]:
    """Which of HEAVY importing `module` in a fresh interpreter asks for, each with the
    chain of our modules that led to it."""
    done = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(HEAVY), module],
                          capture_output=True, text=True, check=True, timeout=60)
    found: dict[str, list[str]] = json.loads(done.stdout)
    return found


@pytest.mark.parametrize("module", _seams_and_services())
def test_importing_a_seam_a_service_or_delivery_loads_no_driver(module: str) -> None:
    """A fresh interpreter that imports it loads none of SQLAlchemy, redis, aiohttp,
    asyncpg and aiosqlite."""
    loaded = drivers_loaded_by(module)
    assert loaded == {}, f"importing {module} loads {loaded}"


def test_the_check_sees_a_driver_loaded() -> None:
    """The fresh interpreter reports what an adapter pulls in, so an empty set means it."""
    assert drivers_loaded_by("hubbub.adapters.redis.client") == {
        "redis": ["hubbub.adapters.redis.client"]}
    assert drivers_loaded_by("hubbub.services.views") == {}


# -- sizes -----------------------------------------------------------------------------------

MAX_MODULE_LINES = 420
MAX_FUNCTION_LINES = 60
# The exceptions, each with its reason; keep them few (a new one needs a reason here).
LONG_MODULES: set[str] = set()
LONG_FUNCTIONS = {
    # The first migration is the schema as it was released: never edited again.
    "hubbub/adapters/sql/migrations/versions/0001_initial_schema.py:upgrade",
}


def sizes() -> tuple[dict[str, int], dict[str, int]]:
    """`({module path: lines}, {path:function: lines})` for every module under src/."""
    modules: dict[str, int] = {}
    functions: dict[str, int] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = str(path.relative_to(SRC))
        source = path.read_text()
        modules[name] = len(source.splitlines())
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                functions[f"{name}:{node.name}"] = node.end_lineno - node.lineno + 1
    return modules, functions


def test_no_module_is_too_long() -> None:
    """Every module but the listed exceptions has at most MAX_MODULE_LINES lines."""
    modules, _ = sizes()
    long = {name for name, lines in modules.items() if lines > MAX_MODULE_LINES}
    assert long <= LONG_MODULES, sorted(long - LONG_MODULES)


def test_no_function_is_too_long() -> None:
    """Every function but the listed exceptions has at most MAX_FUNCTION_LINES lines."""
    _, functions = sizes()
    long = {name for name, lines in functions.items() if lines > MAX_FUNCTION_LINES}
    assert long <= LONG_FUNCTIONS, sorted(long - LONG_FUNCTIONS)


def test_the_exceptions_are_still_needed() -> None:
    """An exception that fits the bounds again leaves the list (it stays short)."""
    modules, functions = sizes()
    assert {name for name in LONG_MODULES if modules.get(name, 0) <= MAX_MODULE_LINES} == set()
    assert {name for name in LONG_FUNCTIONS
            if functions.get(name, 0) <= MAX_FUNCTION_LINES} == set()
