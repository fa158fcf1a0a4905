"""The package's structure: no import cycles, and layers that only point down.

Every import in every module of ``fastnet`` is read from the source (those
inside functions too, since an import moved into a function is how a cycle
usually hides), and resolved to the fastnet module it loads. The parts are
ranked as docs/design/architecture.md describes: a module may import its own
part and the parts below it, never one above or beside it.
"""

from __future__ import annotations

import ast
import pathlib

import fastnet

PACKAGE = pathlib.Path(fastnet.__file__).parent

#: Each part of the package and its layer: imports point to lower numbers.
LAYERS = {
    "fastnet.cli": 5,
    "fastnet.__main__": 5,
    "fastnet._bench": 5,
    "fastnet": 4,  # the package's __init__: the public names
    "fastnet.receive": 3,
    "fastnet.send": 3,
    "fastnet.capture": 2,
    "fastnet.frames": 2,
    "fastnet.core": 1,
    "fastnet.engines": 0,
    "fastnet.errors": -1,
    "fastnet.constants": -1,
}
#: Parts of one layer that may use each other, and in which direction.
SIDEWAYS = {("fastnet.cli", "fastnet._bench"), ("fastnet.__main__", "fastnet.cli")}


def module_names() -> dict:
    """Dotted module name -> source path, for every .py file in the package."""
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


MODULES = module_names()


def imports_of(name: str, path: pathlib.Path) -> set:
    """The fastnet modules ``name`` imports anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # ``from package import submodule`` loads the submodule; any
            # other name comes from the module itself
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                found.add(submodule if submodule in MODULES else target)
    return {target for target in found if target in MODULES and target != name}


GRAPH = {name: imports_of(name, path) for name, path in MODULES.items()}


def part_of(name: str) -> str:
    """The part (a key of LAYERS) a module belongs to."""
    while name not in LAYERS:
        name = name.rpartition(".")[0]
    return name


def find_cycles(graph: dict) -> list:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []
    counter = [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for succ in graph[node]:
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_the_walk_sees_the_package():
    # The checks below mean nothing if the walk finds no modules or no imports.
    assert {"fastnet.core.socket", "fastnet.engines", "fastnet.receive.receiver", "fastnet.cli.recv"} <= set(
        MODULES
    )
    assert "fastnet.core.batch" in GRAPH["fastnet.core.socket"]
    assert "fastnet.engines" in GRAPH["fastnet.core.socket"]


def test_find_cycles_finds_a_planted_one():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycles():
    assert find_cycles(GRAPH) == []


def test_imports_point_down():
    upward = []
    for name, targets in GRAPH.items():
        here = part_of(name)
        for target in targets:
            there = part_of(target)
            if there == here or (here, there) in SIDEWAYS:
                continue
            if LAYERS[there] >= LAYERS[here]:
                upward.append(f"{name} imports {target}")
    assert upward == []


def test_the_library_never_imports_the_cli():
    offenders = [
        name
        for name, targets in GRAPH.items()
        if part_of(name) not in ("fastnet.cli", "fastnet.__main__")
        and any(part_of(target) == "fastnet.cli" for target in targets)
    ]
    assert offenders == []


def test_engines_import_nothing_above_them():
    for name, targets in GRAPH.items():
        if part_of(name) == "fastnet.engines":
            assert {part_of(t) for t in targets} <= {
                "fastnet.engines",
                "fastnet.errors",
                "fastnet.constants",
            }, name
