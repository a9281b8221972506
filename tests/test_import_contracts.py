"""Import contracts: each module docstring's "must never" about dependencies, turned into a check.

Every import statement of a module counts (also one inside a function): a sans-I/O engine that
imports sqlite3 lazily is still not sans-I/O. The layering: protocol/ is the bottom and imports
neither upper part; conformance/ and reference_server/ never import each other (the suite starts
the reference server only as a subprocess). The pytest plugin, loaded in every pytest run of an
environment where the kit is installed, imports nothing of the kit at module level.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "stui_protocol_kit"


def imports_of(path: Path, *, module_level_only: bool = False) -> set[str]:
    """Every module a file imports (dotted names; `from a.b import c` gives a.b and a.b.c)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def attribute_calls(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}


def _hits(imported: set[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(name for name in imported for bad in forbidden if name == bad or name.startswith(bad + "."))


# file -> (modules it must never import, the words of its docstring that promise it)
SANS_IO = ("sqlite3", "zmq", "time", "secrets", "socket", "subprocess", "threading")
RULES: dict[str, tuple[tuple[str, ...], str]] = {
    "reference_server/engine.py": (SANS_IO, "must never do: import a storage technology, a socket library, `time` or"),
    "reference_server/sessions.py": (SANS_IO, "imports no storage technology, clock or socket"),
    "reference_server/reply_cache.py": (SANS_IO, "must never execute a command or touch storage"),
    "reference_server/store.py": (("sqlite3", "zmq"), "must never import one"),
    "reference_server/evaluator.py": (("os", "sqlite3", "zmq", "socket", "subprocess", "importlib"),
                                      "never perform I/O"),
    "reference_server/config.py": (("os", "time", "sqlite3", "zmq"),
                                   "must never read the environment, files or clocks"),
    "reference_server/transport.py": (("sqlite3", f"{PACKAGE}.reference_server.sqlite_store",
                                       f"{PACKAGE}.reference_server.store"), "touch storage"),
    "protocol/lifecycle.py": (("time", "datetime", "zmq", "sqlite3"), "must never read the time itself"),
    "protocol/framing.py": (("zmq", "socket", "time"), "must never do I/O"),
    "protocol/codec.py": (("zmq", "socket", "sqlite3"), "Pure functions"),
    "protocol/facts.py": (("zmq", "sqlite3", "time"), "never do I/O beyond"),
    "protocol/client_rules.py": (SANS_IO, "must never do I/O or read a clock"),
    "protocol/traffic_checks.py": (SANS_IO, "must never do I/O or read a clock"),
    "conformance/client_check/scenarios.py": (SANS_IO, "must never do I/O or read a clock"),
    "conformance/client_check/catalog.py": ((*SANS_IO, f"{PACKAGE}.reference_server"),
                                            "must never do I/O and never import the reference server"),
}


@pytest.mark.parametrize("relative", sorted(RULES))
def test_module_imports_nothing_its_docstring_rules_out(relative: str) -> None:
    path = REPO / relative
    forbidden, promise = RULES[relative]
    docstring = " ".join((ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or "").split())
    assert " ".join(promise.split()) in docstring, f"{relative}'s docstring no longer says what this test checks"
    assert _hits(imports_of(path), forbidden) == []


@pytest.mark.parametrize("relative", ["reference_server/engine.py", "reference_server/sessions.py",
                                      "reference_server/reply_cache.py"])
def test_sans_io_modules_configure_no_logging(relative: str) -> None:
    # Getting a logger is fine; configuring handlers or levels is the CLI's business.
    configuring = {"basicConfig", "addHandler", "setLevel", "dictConfig", "fileConfig"}
    assert configuring & attribute_calls(REPO / relative) == set()


def _part_files(part: str) -> list[Path]:
    return sorted((REPO / part).rglob("*.py"))


# The one module of conformance/ that may import the reference server: client-check *is* a server (the
# reference engine on a store of its own), and its docstring says so. The verb imports it only when it runs.
REFERENCE_SERVER_USERS = {
    "conformance/client_check/kit_server.py": "the one module of conformance/ that imports the reference server",
}


@pytest.mark.parametrize(("part", "forbidden"), [
    ("protocol", (f"{PACKAGE}.conformance", f"{PACKAGE}.reference_server")),
    ("conformance", (f"{PACKAGE}.reference_server",)),
    ("reference_server", (f"{PACKAGE}.conformance",)),
])
def test_layering(part: str, forbidden: tuple[str, ...]) -> None:
    hits = {str(p.relative_to(REPO)): _hits(imports_of(p), forbidden) for p in _part_files(part)}
    assert {k: v for k, v in hits.items() if v and k not in REFERENCE_SERVER_USERS} == {}


@pytest.mark.parametrize("relative", sorted(REFERENCE_SERVER_USERS))
def test_a_module_that_imports_the_reference_server_says_so(relative: str) -> None:
    docstring = " ".join((ast.get_docstring(ast.parse((REPO / relative).read_text(encoding="utf-8"))) or "").split())
    assert REFERENCE_SERVER_USERS[relative] in docstring
    assert _hits(imports_of(REPO / relative), (f"{PACKAGE}.reference_server",)), "no longer needs the exception"


def test_the_cli_loads_the_reference_server_only_when_client_check_runs() -> None:
    code = (
        "import sys\n"
        f"from {PACKAGE}.conformance import cli\n"
        "cli.build_parser()\n"
        f"print('\\n'.join(m for m in sys.modules if m.startswith('{PACKAGE}.reference_server')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == []


def test_the_import_scan_sees_imports_inside_functions(tmp_path: Path) -> None:
    sample = tmp_path / "m.py"
    sample.write_text("def f():\n    import sqlite3\n    from zmq.utils import monitor\n")
    assert _hits(imports_of(sample), ("sqlite3", "zmq")) == ["sqlite3", "zmq.utils", "zmq.utils.monitor"]


def test_pytest_plugin_imports_only_pytest_at_module_level() -> None:
    plugin = REPO / "conformance" / "pytest_plugin.py"
    assert imports_of(plugin, module_level_only=True) <= {"__future__", "__future__.annotations", "typing",
                                                          "typing.TYPE_CHECKING", "typing.Any", "pytest"}


def test_loading_the_pytest_plugin_loads_no_other_part_of_the_kit() -> None:
    code = (
        "import sys, pytest\n"
        "before = set(sys.modules)\n"
        f"import {PACKAGE}.conformance.pytest_plugin\n"
        "print('\\n'.join(sorted(set(sys.modules) - before)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split())
    assert loaded <= {PACKAGE, f"{PACKAGE}.conformance", f"{PACKAGE}.conformance.pytest_plugin"}, sorted(loaded)
