"""The package layout: one top-level import package, the layering rules, no import cycles.

The rules are those of ``docs/architecture.md``: ``schemas`` imports nothing of ours,
``detectors`` (the core) imports only ``schemas`` and no I/O library, ``stream`` (the
shell) may import both; and no module imports itself back through others.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "detectors", "stream")
#: Imports the functional core must never make (I/O, Kafka, the metrics server, clocks).
CORE_FORBIDDEN = ("confluent_kafka", "prometheus_client", "driftsentinel.stream", "socket", "http", "urllib")


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["driftsentinel", *parts])


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _imports(path: Path, name: str, top_level_only: bool) -> set[str]:
    """Absolute names imported by a module (``top_level_only``: not inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    if top_level_only:  # also imports under module-level if/try (TYPE_CHECKING is not a runtime edge)
        nodes = [
            n
            for stmt in tree.body
            for n in ast.walk(stmt)
            if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and not (isinstance(stmt, ast.If) and "TYPE_CHECKING" in ast.unparse(stmt.test))
        ]
    out: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{alias.name}" for alias in node.names)
    return out


def _graph(top_level_only: bool) -> dict[str, set[str]]:
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        graph[name] = {m for m in _imports(path, name, top_level_only) if m in mods and m != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (a list of modules, first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle() -> None:
    """Not even through imports deferred into functions: a cycle there is a design smell too."""
    graph = _graph(top_level_only=False)
    # a package's __init__ re-exports its modules: the edge module -> its own package is not a cycle
    for name in graph:
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    assert _cycle(graph) is None, f"import cycle: {' -> '.join(_cycle(graph) or [])}"


@pytest.mark.parametrize("package", PACKAGES)
def test_layering(package: str) -> None:
    allowed = {"schemas": (), "detectors": ("schemas",), "stream": ("schemas", "detectors")}[package]
    bad = []
    for name, path in _modules().items():
        if not name.startswith(f"driftsentinel.{package}"):
            continue
        for imp in _imports(path, name, top_level_only=False):
            if imp.startswith("driftsentinel.") and imp.split(".")[1] not in (package, *allowed):
                bad.append(f"{name} imports {imp}")
            if package == "detectors" and imp.startswith(CORE_FORBIDDEN):
                bad.append(f"{name} imports {imp} (the core does no I/O)")
    assert not bad, "\n".join(bad)


def test_no_bare_top_level_imports_of_our_folders() -> None:
    """Everything imports ``driftsentinel.X``; a bare ``import stream`` would find a user's folder."""
    bad = []
    for name, path in _modules().items():
        for imp in _imports(path, name, top_level_only=False):
            if imp.split(".")[0] in PACKAGES:
                bad.append(f"{name} imports {imp}")
    assert not bad, "\n".join(bad)


def test_wheel_has_one_top_level_package(tmp_path: Path) -> None:
    """``pip wheel .`` installs ``driftsentinel`` and nothing else at the top of site-packages."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("driftsentinel-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
        entry_points = next(zf.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert top == {"driftsentinel"}
    for sub in PACKAGES:
        assert f"driftsentinel/{sub}/__init__.py" in names
    assert "driftsentinel/__main__.py" in names
    assert not [n for n in names if "benchmarks" in n or n.startswith("tests/")]
    assert "driftsentinel = driftsentinel.stream.cli:main" in entry_points


def test_python_dash_m_driftsentinel() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "driftsentinel", "--help"], capture_output=True, text=True, timeout=60, cwd="/"
    )
    assert out.returncode == 0, out.stderr
    assert "replay" in out.stdout and "local-kafka" in out.stdout
