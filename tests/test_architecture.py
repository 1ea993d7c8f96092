"""The layers of docs/architecture.md, enforced: the import-linter contract in pyproject.toml, no look-ups of a
higher layer through ``sys.modules`` or ``importlib``, no import cycle beyond the documented ones."""

import importlib.util
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"

importlinter = pytest.importorskip("importlinter")
if sys.version_info < (3, 11):  # pragma: no cover
    pytest.skip("the contract is read with tomllib (Python 3.11+)", allow_module_level=True)


def _tool():
    spec = importlib.util.spec_from_file_location("module_graph", ROOT / "tools" / "module_graph.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _src():
    import whence
    return str(Path(whence.__file__).resolve().parents[1])


def test_layers_contract_is_kept(capsys):
    """import-linter checks every import (module top and function level) against the layers contract."""
    from importlinter import configuration
    from importlinter.application.use_cases import lint_imports
    configuration.configure()
    kept = lint_imports(config_filename=str(PYPROJECT), cache_dir=None, no_logo=True)
    out = capsys.readouterr().out
    assert kept is True, out
    # the layers, the families of whence.maps, the store's modules, the query package's, the scikit-learn hooks'
    assert "5 kept, 0 broken" in out, out


def test_contract_names_every_module():
    """Every module of the package belongs to a layer, so none escapes the contract."""
    tool = _tool()
    layers, _ = tool.contract(str(PYPROJECT))
    mods = tool.module_files(_src())
    loose = sorted(m for m in mods if m != "whence" and tool.layer_of(m, layers) is None)
    assert not loose, f"modules in no layer of pyproject.toml's contract: {loose}"


def test_package_contracts_name_every_module():
    """Every module of a package with a contract of its own (its ``containers``) sits in one of its layers."""
    import tomllib
    tool = _tool()
    mods = tool.module_files(_src())
    with open(PYPROJECT, "rb") as f:
        contracts = tomllib.load(f)["tool"]["importlinter"]["contracts"]
    containers = {c["containers"][0]: c for c in contracts if c.get("containers")}
    assert {"whence.maps", "whence.store", "whence.query", "whence.tabular.sklearn"} <= set(containers)
    for pkg, c in containers.items():
        named = {f"{pkg}.{p.strip()}" for layer in c["layers"] for p in layer.replace(":", "|").split("|")}
        inside = {m for m in mods if m.startswith(pkg + ".") and m.count(".") == pkg.count(".") + 1}
        assert inside and inside <= named, (pkg, sorted(inside - named))


def test_split_packages_re_export_their_names():
    """whence.query and whence.tabular.sklearn re-export the names of their modules: the same objects (the query
    layer's hook table, the fit registry), the former private spellings kept as aliases."""
    from whence import hooks, query
    from whence.query import nodes, prepare, walk
    from whence.tabular import sklearn as sk
    from whence.tabular.sklearn import fits, outputs
    assert query.HOOKS is prepare.HOOKS
    assert query._upstream is nodes.upstream_nodes and query._node_of is nodes.node_of
    assert query._forced is prepare.compose_before_query and query._backward_sets is walk.backward_sets
    assert sk._fits is fits.fitted_inputs and sk._fit_entry is fits.fit_entry
    assert sk.output_node is outputs.output_node and sk.output_node in hooks.NODE_RESOLVERS


def _imports_in(fn):
    """The import statements in the body of ``fn``, not in functions nested in it."""
    import ast
    stack, out = list(fn.body), []
    while stack:
        n = stack.pop()
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if isinstance(n, (ast.Import, ast.ImportFrom)):
            out.append(n)
        stack.extend(ast.iter_child_nodes(n))
    return out


def test_hook_tables_are_filled():
    """The tables of whence.hooks hold what docs/architecture.md says, filled by the layers above."""
    import numpy as np

    import whence as wh
    from whence import buckets, query, tracked
    assert {"reduce", "ufunc", "gufunc_labels", "dispatch", "elide", "elide_operator", "upstream", "cell",
            "node_of"} <= set(tracked._hooks.ARRAY) <= {"reduce", "ufunc", "gufunc_labels", "dispatch", "elide",
                                                        "elide_operator", "upstream", "cell", "node_of", "died"}
    assert tracked._hooks.ARRAY["cell"] is query.Cell
    assert tracked._hooks.ARRAY["dispatch"] is buckets.registry.dispatch
    assert set(tracked._hooks.LAZY) == {"array", "dataframe"}
    a = wh.track(np.arange(4.0), name="hooks_a")
    try:
        assert np.cumsum(a).cell(1).parents == [("hooks_a", (0,)), ("hooks_a", (1,))]
    finally:
        wh.release("hooks_a")


def test_exceptions_are_display_entry_points():
    """The contract's exceptions are imports of the display layer made inside a ``_repr_html_``-style method."""
    import ast
    tool = _tool()
    _, ignored = tool.contract(str(PYPROJECT))
    mods = tool.module_files(_src())
    assert ignored
    for importer, imported in ignored:
        assert imported == "whence.notebook", (importer, imported)
        tree = ast.parse(Path(mods[importer]).read_text(encoding="utf-8"))
        seen = 0
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for n in _imports_in(fn):
                if isinstance(n, ast.ImportFrom) and n.module and n.module.endswith("notebook"):
                    assert fn.name == "_repr_html_" or fn.name.endswith("_html"), (importer, fn.name)
                    seen += 1
        assert seen, f"{importer} is listed as a display entry point but imports no display inside one"
        top = [n for n in tree.body if isinstance(n, ast.ImportFrom) and (n.module or "").endswith("notebook")]
        assert not top, f"{importer} imports the display layer at module top"


def test_no_lookup_of_a_higher_layer():
    """No module reaches a higher layer through ``sys.modules`` or ``importlib.import_module``."""
    tool = _tool()
    layers, _ = tool.contract(str(PYPROJECT))
    mods = tool.module_files(_src())
    bad = [(a, b, line) for a, b, line in tool.hidden_imports(mods)
           if a != "whence" and (tool.layer_of(b, layers) or 0) > (tool.layer_of(a, layers) or 0)]
    assert not bad, f"look-ups of a higher layer (use a table in whence.hooks): {bad}"


def test_lookup_detector_sees_lookups(tmp_path):
    """The look-up finder is not blind: it reports the forms it is meant to forbid."""
    tool = _tool()
    pkg = tmp_path / "whence"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "low.py").write_text(
        "import sys, importlib\n"
        "def f():\n"
        "    a = sys.modules.get('whence.high')\n"
        "    b = sys.modules['whence.high']\n"
        "    c = importlib.import_module('.high', __package__)\n"
        "    d = sys.modules.get('pandas')\n")
    found = tool.hidden_imports(tool.module_files(str(tmp_path)))
    assert [(a, b) for a, b, _ in found] == [("whence.low", "whence.high")] * 3


def test_no_import_cycle():
    """Apart from the documented display entry points, no import cycle joins modules (imports at module top and
    inside functions alike)."""
    m = _tool().measure(_src(), str(PYPROJECT))
    assert not m["cycles_without_entry_points"], f"import cycles: {m['cycles_without_entry_points']}"


def test_cycle_finder_sees_cycles():
    """The cycle finder is not blind: a function-level import that closes a loop is a cycle."""
    tool = _tool()
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert tool.cycles(edges, ["a", "b", "c", "d"]) == [["a", "b", "c"]]


def test_unregistered_function_falls_back_to_opaque():
    """The function table hands a function no bucket holds to the opaque handler (a table entry the opaque
    module fills): PARTIAL, with a reason and a warning, every source cell kept."""
    import numpy as np

    import whence as wh
    from whence.buckets import registry

    def double(x):
        return np.asarray(x) * 2

    a = wh.track(np.arange(4.0), name="fallback_a")
    try:
        with pytest.warns(wh.PartialLineageWarning, match="no lineage rule"):
            r = registry.dispatch(double, (type(a),), (a,), {})
        assert np.array_equal(wh.plain(r), np.arange(4.0) * 2)
        assert r.node.partial and "no lineage rule" in r.node.partial
        assert wh.backward(r, 0).completeness == "PARTIAL"
        assert np.array_equal(wh.backward(r, 0)["fallback_a"], np.arange(4)[:, None])
    finally:
        wh.release("fallback_a")


def _map_classes():
    import whence.maps as maps
    from whence import tracked  # noqa: F401  (its own map class)
    seen, todo = [], [maps.Map]
    while todo:
        c = todo.pop()
        for sub in c.__subclasses__():
            if sub not in seen:
                seen.append(sub)
                todo.append(sub)
    return seen


#: the optional methods of the Map protocol (whence.maps.Map's docstring) and the arguments they take
OPTIONAL = {"backward_sparse": 1, "forward_sparse": 2, "backward_all": 0, "forward_all": 1, "copy_index": 0,
            "rectangles": 0, "channel": 1, "compose": 1, "broadcast": 1, "held_arrays": 0}


def test_maps_follow_the_documented_protocol():
    """Every map class defines the required methods of whence.maps.Map's protocol (not the base's placeholders);
    the base defines every optional method with a "not supported" answer, so no caller probes for them; every
    class's own version takes the documented arguments; the flags are booleans, and ``composable`` is declared
    by each class for itself (a subclass of a composable map is not folded as its base unless it says so)."""
    import inspect

    import numpy as np

    import whence.maps as maps
    classes = _map_classes()
    assert {"ElementwiseMap", "ReduceMap", "GatherMap", "ViewMap", "UnionMap", "ChainMap"} <= {
        c.__name__ for c in classes}
    # the base's answers: not available (None), not a copy (TypeError), nothing held
    base = maps.Map()
    base.out_shape, base.parent_shapes = (2,), ((2,),)
    flat = np.zeros(1, np.int64)
    assert base.backward_sparse(flat) is None and base.forward_sparse(0, flat) is None
    assert base.backward_all() is None and base.forward_all(0) is None and base.rectangles() is None
    assert base.compose(base) is None and base.broadcast((2,)) is None and base.held_arrays() == ()
    assert base.nbytes == 0 and not base.copies and not base.composable
    with pytest.raises(TypeError):
        base.copy_index()
    for cls in classes:
        assert isinstance(cls.kind, str), cls
        assert cls.backward is not maps.Map.backward and cls.forward is not maps.Map.forward, cls
        assert isinstance(cls.copies, bool) or isinstance(cls.__dict__.get("copies"), property), cls
        assert isinstance(cls.composable, bool), cls
        assert cls.composable == bool(cls.__dict__.get("composable", False)), cls
        for name, nargs in OPTIONAL.items():
            f = getattr(cls, name)
            assert callable(f), (cls.__name__, name)  # (an attribute set to None would break the callers)
            params = [p for p in inspect.signature(f).parameters.values()
                      if p.default is inspect.Parameter.empty and p.kind is p.POSITIONAL_OR_KEYWORD]
            assert len(params) == nargs + 1, (cls.__name__, name, params)


def test_composable_maps_are_exactly_the_classes_the_rules_know():
    """compose_pair folds the classes whose exact form the composition rules know; a subclass of one (the lazy
    gather of the dask backend, the lifted map of a write) stays apart unless it declares itself."""
    import whence.maps as maps
    composable = {c.__name__ for c in _map_classes() if c.composable}
    assert composable == {"ElementwiseMap", "ViewMap", "ReduceMap", "LaneMap", "BandMap", "EinsumMap",
                          "GatherMap", "ChainMap", "PairsMap"}, composable
    assert maps.ChainMap([maps.ViewMap((2,), (4,), "slice", (slice(0, 4, 2),)),
                          maps.ElementwiseMap((4,), ((4,),))]).copies
    assert not maps.ChainMap([maps.ReduceMap((3,), (0,), (), [(3,)]),
                              maps.ViewMap((3,), (6,), "slice", (slice(0, 6, 2),))]).copies
