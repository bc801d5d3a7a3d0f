"""The package's layers: each imports only from the layers before it, and nothing is circular.

core (errors, safe writes, configs, palette) -> io -> synth | evaluation -> models -> viewer
-> report -> the command line. synth and evaluation stand side by side: neither imports the
other. Every import statement counts, also those inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "usbkit"

#: Layer rank of each top-level part of the package.
LAYERS = {
    "errors": 0,
    "safeio": 0,
    "config": 0,
    "style": 0,
    "version": 0,
    "io": 1,
    "synth": 2,
    "evaluation": 2,
    "models": 3,
    "viewer": 4,
    "report": 5,
    "cli": 6,
    "__main__": 6,
    "__init__": 6,  # the package's flat public API may name any layer
}
#: Parts of the same rank that stand side by side and must not import each other.
SIDE_BY_SIDE = {frozenset({"synth", "evaluation"})}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def part_of(module: str) -> str:
    """``usbkit.io.study`` -> ``io``; ``usbkit`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every usbkit import in a file, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("usbkit")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1])
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            if not mod.startswith("usbkit"):
                continue
            # `from usbkit.models import data` imports the module usbkit.models.data
            for a in node.names:
                sub = f"{mod}.{a.name}"
                target = (
                    sub
                    if (PACKAGE.parent / Path(*sub.split("."))).exists()
                    or (PACKAGE.parent / (Path(*sub.split(".")).as_posix() + ".py")).exists()
                    else mod
                )
                found.append((node.lineno, target))
    return found


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_part_of_the_package_has_a_layer():
    parts = {part_of(m) for m in all_modules()}
    assert parts <= set(LAYERS), f"give these a layer: {parts - set(LAYERS)}"


def test_no_import_runs_from_an_earlier_layer_to_a_later_one():
    upward = []
    for mod, path in all_modules().items():
        me = part_of(mod)
        for line, target in imports_of(path):
            them = part_of(target)
            if them == me:
                continue
            if LAYERS[them] > LAYERS[me] or frozenset({me, them}) in SIDE_BY_SIDE:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({me}) imports {target}")
    assert not upward, "imports against the layer order:\n" + "\n".join(upward)


def test_no_module_imports_itself_through_a_cycle():
    modules = all_modules()
    graph = {m: set() for m in modules}
    for mod, path in modules.items():
        for _, target in imports_of(path):
            # the package __init__ files are entry points of their layer, not links of a cycle
            while target not in modules and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in modules and target != mod and not modules[target].name == "__init__.py":
                graph[mod].add(target)
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from usbkit.report.figures import froc_figure\n", ["usbkit.report.figures"]),
        ("import usbkit.models.train\n", ["usbkit.models.train"]),
        ("def f():\n    from usbkit.viewer import scrubber\n", ["usbkit.viewer.scrubber"]),
    ],
)
def test_the_import_walker_sees_every_kind_of_import(tmp_path, source, expected, monkeypatch):
    fake = PACKAGE / "io" / "_walker_probe.py"
    monkeypatch.setattr(Path, "read_text", lambda self, encoding=None: source)
    assert [t for _, t in imports_of(fake)] == expected


def test_an_upward_import_would_be_caught():
    """The rule itself: io (layer 1) importing the report (layer 5) is refused."""
    me, them = part_of("usbkit.io.study"), part_of("usbkit.report.figures")
    assert LAYERS[them] > LAYERS[me]
    assert frozenset({part_of("usbkit.synth.scene"), part_of("usbkit.evaluation.froc")}) in (
        SIDE_BY_SIDE
    )
