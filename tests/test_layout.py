"""The package's layout rule: each group of modules imports only its own group and the
groups below it (docs/contributing.md), with no import circle between modules and no
private name used outside its module. Read from the source, so a lazy import inside a
function counts as much as one at the top."""

from __future__ import annotations

import ast
import importlib
import pathlib

import pytest

import catchjax

PACKAGE = pathlib.Path(catchjax.__file__).parent

# lowest first; a module may import its own group and any group listed before it
GROUPS = [
    ("errors", {"errors"}),
    ("safe output", {"safe_io"}),
    ("benchmarks", {"benchmarks", "residual"}),
    ("protocol", {"core", "stepping", "arguments"}),
    ("parts", {"networks", "optimizers", "ppo", "replay", "sampling"}),
    ("methods", {"methods"}),
    ("store", {"store"}),
    ("runs", {"runs"}),
    ("asktell", {"asktell"}),
    ("studies", {"studies"}),
    ("integrations", {"integrations"}),  # other tools' interfaces (optuna) over asktell
    ("cli", {"cli", "__main__"}),  # __main__: `python -m catchjax`
]
# groups on one level: neither may import the other
SIBLINGS = {frozenset({"asktell", "studies"})}


def _module_name(path: pathlib.Path) -> str:
    parts = ("catchjax", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, pathlib.Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()


def _target(name: str) -> str:
    """The module a dotted import name lands in (a name inside a module: the module)."""
    while name not in MODULES and "." in name:
        name = name.rpartition(".")[0]
    return name


def _imports(path: pathlib.Path) -> list[tuple[str, int, tuple[str, ...]]]:
    """(module imported, line, names imported from it) for every catchjax import."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno, ()) for a in node.names if a.name.startswith("catchjax")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and \
                (node.module or "").startswith("catchjax"):
            for a in node.names:
                full = f"{node.module}.{a.name}"
                if full in MODULES:  # from package import module
                    out.append((full, node.lineno, ()))
                elif node.module == "catchjax" and a.name in catchjax._LAZY:
                    out.append((catchjax._LAZY[a.name], node.lineno, ()))
                else:
                    out.append((node.module, node.lineno, (a.name,)))
    return out


def _group(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) < 2:
        return None  # the package root: version and lazy names, no rule
    for rank, (_, members) in enumerate(GROUPS):
        if parts[1] in members:
            return rank
    raise AssertionError(f"{module} is in no group of tests/test_layout.py's GROUPS: "
                         f"add it where it belongs (and to docs/contributing.md)")


def test_every_module_is_in_a_group():
    for module in MODULES:
        _group(module)


def test_groups_import_only_downwards():
    wrong = []
    for module, path in MODULES.items():
        mine = _group(module)
        for name, line, _ in _imports(path):
            if name in catchjax.MOVED or any(name.startswith(o + ".") for o in catchjax.MOVED):
                wrong.append(f"{path.name}:{line} imports {name} by its old name")
                continue
            theirs = _group(_target(name))
            if mine is None or theirs is None:
                continue
            a, b = GROUPS[mine][0], GROUPS[theirs][0]
            if theirs > mine or frozenset({a, b}) in SIBLINGS:
                wrong.append(f"{module} ({a}) imports {name} ({b}), line {line}")
    assert not wrong, "\n".join(wrong)


def test_no_import_circles():
    graph = {m: {_target(n) for n, _, _ in _imports(p)} - {m, "catchjax"}
             for m, p in MODULES.items()}

    def package_parents(m):  # importing a.b.c runs a/__init__ and a.b/__init__ first
        parts = m.split(".")
        return {".".join(parts[:i]) for i in range(2, len(parts))}

    circles = []
    state: dict[str, int] = {}

    def visit(m, stack):
        state[m] = 1
        for n in sorted(graph.get(m, ())):
            if n in package_parents(m) or m in package_parents(n):
                continue  # a package and its own modules
            if state.get(n) == 1:
                circles.append(" -> ".join(stack[stack.index(n):] + [n]))
            elif n not in state:
                visit(n, stack + [n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not circles, "\n".join(circles)


def _bound_modules(path: pathlib.Path) -> dict[str, str]:
    """Local name -> catchjax module, for the names a file binds to catchjax modules."""
    bound = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("catchjax") and a.asname:
                    bound[a.asname] = _target(a.name)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("catchjax"):
            for a in node.names:
                if f"{node.module}.{a.name}" in MODULES:
                    bound[a.asname or a.name] = f"{node.module}.{a.name}"
    return bound


def test_no_private_name_used_outside_its_module():
    used = []
    for module, path in MODULES.items():
        for name, line, names in _imports(path):
            used += [f"{module}:{line} imports {name}.{n}" for n in names
                     if n.startswith("_") and not n.startswith("__") and _target(name) != module]
        bound = _bound_modules(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and \
                    not node.attr.startswith("__") and isinstance(node.value, ast.Name) and \
                    bound.get(node.value.id, module) != module:
                used.append(f"{module}:{node.lineno} uses {bound[node.value.id]}.{node.attr}")
    assert not used, "\n".join(used)


@pytest.mark.parametrize("old", sorted(catchjax.MOVED))
def test_a_moved_module_imports_by_its_first_name_as_the_same_module(old):
    assert importlib.import_module(old) is importlib.import_module(catchjax.MOVED[old])


def test_modules_and_functions_stay_small():
    """The size rule (issue 31, docs/contributing.md): no module over 500 lines, no function
    over 80 (a parser included), the in-memory AskTell at most 250 lines and its start 30."""
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text()
        name = path.relative_to(PACKAGE)
        if len(source.splitlines()) > 500:
            too_long.append(f"{name}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            lines = getattr(node, "end_lineno", 0) - getattr(node, "lineno", 0) + 1
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and lines > 80:
                too_long.append(f"{name}: {node.name} {lines} lines")
            if isinstance(node, ast.ClassDef) and node.name == "AskTell":
                start = [b for b in node.body if getattr(b, "name", "") == "start"]
                if lines > 250 or (start and start[0].end_lineno - start[0].lineno + 1 > 30):
                    too_long.append(f"{name}: AskTell {lines} lines")
    assert not too_long, "; ".join(too_long)
