"""The layering of the package: no import circles, and the library never loads the harness.

The import graph is read from the source (every ``import``, at any depth, annotations
included), so a circle is caught even where it only exists for the type checker.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "repairllm": ROOT / "repairllm",
    "repairllm_backends": ROOT / "backends/repairllm_backends",
}


def _module_name(package: str, path: Path, base: Path) -> str:
    parts = [package, *path.relative_to(base).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    modules: dict[str, Path] = {}
    for package, base in PACKAGES.items():
        for path in base.rglob("*.py"):
            modules[_module_name(package, path, base)] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        here = name if is_package else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    anchor = here.split(".")
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    stem = ".".join([*anchor, node.module] if node.module else anchor)
                else:
                    stem = node.module or ""
                targets = [stem] + [f"{stem}.{alias.name}" for alias in node.names]
            for target in targets:
                # `from . import x` names a submodule; `from .m import f` the module m.
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _is_package_init_edge(a: str, b: str) -> bool:
    return b.startswith(a + ".") or a.startswith(b + ".")


def test_no_import_circles() -> None:
    graph = _graph()
    # A package's __init__ re-exporting its submodules, which import siblings through
    # the package, is one module in two files: drop parent<->child edges.
    pruned = {a: {b for b in bs if not _is_package_init_edge(a, b)} for a, bs in graph.items()}
    assert _cycles(pruned) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_library_never_imports_the_harness() -> None:
    graph = _graph()
    offenders = {
        name: sorted(t for t in targets if t.startswith("repairllm.bench"))
        for name, targets in graph.items()
        if not name.startswith("repairllm.bench")
    }
    assert {name: t for name, t in offenders.items() if t} == {}


# The harness and what only it (or the rare last resort, json-repair) needs, and the
# batch plug-in with its Ray and pyarrow.
HEAVY = (
    "repairllm.bench",
    "repairllm.batch",
    "json_repair",
    "rich",
    "matplotlib",
    "hypothesis_jsonschema",
    "ray",
    "pyarrow",
    # repairllm.observe imports the OpenTelemetry API at the first call, not before.
    "opentelemetry",
)


@pytest.mark.parametrize(
    "code",
    [
        "import repairllm",
        # `repairllm repair` as the console script runs it, through the plug-in lookup.
        "import io; sys.stdin = io.StringIO('{\"a\": 1,}'); "
        "from repairllm.cli import main; assert main(['repair']) == 0",
    ],
    ids=["import", "repair-command"],
)
def test_import_and_the_repair_command_load_none_of_the_harness(code: str) -> None:
    probe = f"import sys\n{code}\nprint([m for m in sys.modules if m.startswith({HEAVY!r})])"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_the_bench_command_is_found_as_a_plug_in() -> None:
    probe = (
        "import sys\nfrom repairllm.cli import main\n"
        "try:\n    main(['bench', 'compare', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('repairllm.bench.cli' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert "usage: repairllm bench compare" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "True"


def test_the_batch_command_is_a_plug_in_that_loads_no_ray_until_asked() -> None:
    probe = (
        "import sys\nfrom repairllm.cli import main\n"
        "try:\n    main(['batch', 'repair', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('repairllm.batch.cli' in sys.modules, 'ray' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert "usage: repairllm batch repair" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "True False"


# The frameworks the adapters (repairllm.adapters) wrap: optional, loaded only by the
# adapter module the user imports.
FRAMEWORKS = ("langchain_core", "langchain", "langsmith", "pydantic_ai", "pydantic_graph")


@pytest.mark.parametrize(
    "code",
    ["import repairllm", "import repairllm.adapters", "from repairllm.adapters import __all__"],
    ids=["library", "adapters-package", "adapters-names"],
)
def test_no_framework_is_imported_before_its_adapter_is_used(code: str) -> None:
    probe = (
        f"import sys\n{code}\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({FRAMEWORKS!r})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    ("name", "framework", "other"),
    [
        ("RepairingOutputParser", "langchain_core", "pydantic_ai"),
        ("repaired", "pydantic_ai", "langchain_core"),
    ],
    ids=["langchain", "pydantic-ai"],
)
def test_an_adapter_name_loads_its_framework_on_first_use(
    name: str, framework: str, other: str
) -> None:
    pytest.importorskip(framework, reason=f"{framework} (an optional extra) is not installed")
    probe = (
        "import sys\nimport repairllm.adapters as adapters\n"
        f"print({framework!r} in sys.modules)\n"
        f"adapters.{name}\n"
        f"print({framework!r} in sys.modules, {other!r} in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-2:] == ["False", "True False"]
