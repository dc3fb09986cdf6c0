"""backends -> opgraph core (tensor, operation, tape, gradcheck) -> ops -> public API:
no module imports a module of a higher layer at module level."""
import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
CORE = {"opgraph.tensor", "opgraph.operation", "opgraph.tape", "opgraph.gradcheck",
        "opgraph.versions"}


def layer(module):
    if module == "opgraph.backends" or module.startswith("opgraph.backends."):
        return 0
    if module in CORE:
        return 1
    if module == "opgraph.ops" or module.startswith("opgraph.ops."):
        return 2
    if module == "opgraph" or module.startswith("opgraph."):
        return 3
    return None  # third party


def module_name(path):
    """The dotted name a file is imported as: backends/ and ops/ are opgraph.backends / .ops."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    if parts[0] in ("backends", "ops"):
        parts.insert(0, "opgraph")
    return ".".join(parts)


def is_module(dotted):
    parts = dotted.split(".")
    if parts[:2] in (["opgraph", "backends"], ["opgraph", "ops"]):
        parts = parts[1:]
    path = ROOT.joinpath(*parts)
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def module_level_imports(path, name):
    """Imports executed when the module is imported: top level, and inside top-level if/try."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found = []

    def visit(body):
        for node in body:
            if isinstance(node, ast.Import):
                found.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(base)
                    target = f"{base}.{node.module}" if node.module else base
                else:
                    target = node.module
                submodules = [f"{target}.{a.name}" for a in node.names if is_module(f"{target}.{a.name}")]
                # `from pkg import submodule` imports the submodule; `from mod import name` the module
                found.extend(submodules if submodules else [target])
            elif isinstance(node, (ast.If, ast.Try)):
                visit(node.body)
                visit(getattr(node, "orelse", []))
                for h in getattr(node, "handlers", []):
                    visit(h.body)
    visit(ast.parse(path.read_text()).body)
    return found


def import_graph():
    g = nx.DiGraph()
    for top in ("backends", "opgraph", "ops"):
        for path in (ROOT / top).rglob("*.py"):
            name = module_name(path)
            g.add_node(name)
            for target in module_level_imports(path, name):
                if layer(target) is not None:
                    g.add_edge(name, target)
    return g


def test_the_import_graph_is_not_empty():
    g = import_graph()
    assert g.has_edge("opgraph.ops.elementwise", "opgraph.operation")
    assert g.has_edge("opgraph.tensor", "opgraph.backends")


def test_no_module_imports_a_higher_layer_at_module_level():
    bad = [f"{a} (layer {layer(a)}) imports {b} (layer {layer(b)})"
           for a, b in import_graph().edges if layer(b) > layer(a)]
    assert not bad, "\n".join(bad)


def test_the_checker_catches_a_violation(tmp_path):
    path = tmp_path / "bad.py"
    path.write_text("import os\nfrom opgraph.ops.elementwise import Add\ndef f():\n    import opgraph.nn\n")
    targets = module_level_imports(path, "opgraph.tensor")
    assert "opgraph.ops.elementwise" in targets and "opgraph.nn" not in targets


PUBLIC_API = ("opgraph.functions", "opgraph.nn", "opgraph.optim", "opgraph.data", "opgraph.graph",
              "opgraph.tropical", "opgraph.serialization", "opgraph.commands")


def _loaded_after(statement):
    import os
    import subprocess
    import sys
    code = f"import sys\n{statement}\nprint(' '.join(sorted(sys.modules)))"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True).stdout
    return set(out.split())


def test_importing_the_op_catalog_loads_no_public_api_module():
    loaded = _loaded_after("import opgraph.ops")
    assert "opgraph.ops" in loaded and "opgraph.tensor" in loaded
    api = sorted(m for m in loaded if layer(m) == 3 and m not in ("opgraph", "opgraph._layout"))
    assert not api, f"import opgraph.ops loaded {api}"
    assert not loaded & set(PUBLIC_API)


def test_the_public_api_loads_on_first_use():
    loaded = _loaded_after("import opgraph as og\nassert 'add' in dir(og) and 'nn' in dir(og)\n"
                           "og.nn.Linear\nog.add\nog.save")
    assert {"opgraph.functions", "opgraph.nn", "opgraph.serialization"} <= loaded
    assert "opgraph.tropical" not in loaded
