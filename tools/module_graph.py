"""Measure whence's module graph: import cycles, upward imports, private names read across modules, long files.

Run from the repository root::

    python tools/module_graph.py            # the tree under src/
    python tools/module_graph.py --src DIR  # another copy of the tree (for example an older commit)

Every ``import`` statement counts, at module top or inside a function. The layers are read from the
import-linter contract in ``pyproject.toml`` (``[tool.importlinter]``), so the figures and the enforced
contract speak of the same layers. The package facade ``whence/__init__.py`` sits above every layer; imports of
it from inside the package are counted on their own line and left out of the cycle count.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
from collections import defaultdict

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = None

ROOT = "whence"
LONG = 800


def module_files(src):
    """``{module name: path}`` for every ``.py`` file of the package under ``src``."""
    out = {}
    base = os.path.join(src, ROOT)
    for d, _, files in os.walk(base):
        for f in files:
            if f.endswith(".py"):
                p = os.path.join(d, f)
                rel = os.path.relpath(p, src)[:-3].split(os.sep)
                if rel[-1] == "__init__":
                    rel = rel[:-1]
                out[".".join(rel)] = p
    return out


def _resolve(mod, is_pkg, level, name):
    parts = mod.split(".") if is_pkg else mod.split(".")[:-1]
    if level > 1:
        parts = parts[:len(parts) - (level - 1)]
    base = ".".join(parts)
    return f"{base}.{name}" if name else base


def imports(mods):
    """``[(importer, imported module, names imported, inside a function?, line)]`` within the package."""
    out = []
    for mod, path in mods.items():
        is_pkg = path.endswith("__init__.py")
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        nested = set()
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                for n in ast.walk(fn):
                    if n is not fn:
                        nested.add(id(n))
        for n in ast.walk(tree):
            inner = id(n) in nested
            if isinstance(n, ast.Import):
                for a in n.names:
                    if a.name == ROOT or a.name.startswith(ROOT + "."):
                        out.append((mod, a.name, (), inner, n.lineno))
            elif isinstance(n, ast.ImportFrom):
                target = _resolve(mod, is_pkg, n.level, n.module) if n.level else n.module
                if target is None or not (target == ROOT or target.startswith(ROOT + ".")):
                    continue
                for a in n.names:
                    sub = f"{target}.{a.name}"
                    if sub in mods:
                        out.append((mod, sub, (), inner, n.lineno))
                    else:
                        out.append((mod, target, (a.name,), inner, n.lineno))
    return out


def contract(pyproject):
    """``(layers, exceptions)`` of the first layers contract: ``[[module prefix, ...], ...]`` top layer first,
    and the set of ``(importer, imported)`` pairs it ignores (the documented display entry points)."""
    if tomllib is None or not os.path.exists(pyproject):
        return [], set()
    with open(pyproject, "rb") as f:
        cfg = tomllib.load(f)
    for c in cfg.get("tool", {}).get("importlinter", {}).get("contracts", []):
        if c.get("type") == "layers":
            out = []
            for layer in c["layers"]:
                out.append([p.strip() for p in layer.replace(":", "|").split("|") if p.strip()])
            ignored = {tuple(x.strip() for x in i.split("->")) for i in c.get("ignore_imports", [])}
            return out, ignored
    return [], set()


def layer_of(mod, lay):
    """The layer index of ``mod`` (0: the lowest), or None when no layer holds it."""
    best, depth = None, -1
    for i, prefixes in enumerate(reversed(lay)):
        for p in prefixes:
            if (mod == p or mod.startswith(p + ".")) and len(p) > depth:
                best, depth = i, len(p)
    return best


def cycles(edges, nodes):
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def node_reads(mods):
    """Reads of the attribute ``._node`` outside ``whence.tracked``, per module."""
    out = {}
    for mod, path in mods.items():
        if mod == f"{ROOT}.tracked":
            continue
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        k = sum(1 for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "_node")
        if k:
            out[mod] = k
    return out


def hidden_imports(mods):
    """``[(module, target, line)]``: look-ups that reach a whence module without an import statement,
    ``sys.modules.get("whence...")``, ``sys.modules["whence..."]`` and ``importlib.import_module(...)`` of a
    whence module (relative names resolved against ``package=__name__``)."""
    out = []
    for mod, path in mods.items():
        is_pkg = path.endswith("__init__.py")
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        for n in ast.walk(tree):
            arg = None
            if isinstance(n, ast.Call) and n.args and isinstance(n.args[0], ast.Constant):
                fn = n.func
                name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
                owner = ast.unparse(fn.value) if isinstance(fn, ast.Attribute) else ""
                if (name == "get" and owner.endswith("sys.modules")) or name == "import_module":
                    arg = n.args[0].value
            elif (isinstance(n, ast.Subscript) and ast.unparse(n.value).endswith("sys.modules")
                  and isinstance(n.slice, ast.Constant)):
                arg = n.slice.value
            if not isinstance(arg, str):
                continue
            if arg.startswith("."):
                level = len(arg) - len(arg.lstrip("."))
                arg = _resolve(mod, is_pkg, level, arg.lstrip(".") or None)
            if arg == ROOT or arg.startswith(ROOT + "."):
                out.append((mod, arg, n.lineno))
    return out


def measure(src, pyproject):
    """The figures as a dict (see the module docstring)."""
    mods = module_files(src)
    imps = imports(mods)
    lay, ignored = contract(pyproject)
    edges, kept = defaultdict(set), defaultdict(set)
    facade = []
    for a, b, _, _, _ in imps:
        if a == b:
            continue
        if b == ROOT and a != ROOT:
            facade.append((a, b))
            continue
        if a != ROOT:
            edges[a].add(b)
            if (a, b) not in ignored:
                kept[a].add(b)
    cyc = cycles(edges, mods)
    cyc_kept = cycles(kept, mods)
    upward = []
    for a, b, names, inner, line in imps:
        la, lb = layer_of(a, lay), layer_of(b, lay)
        if la is not None and lb is not None and lb > la:
            upward.append((a, b, line, (a, b) in ignored))
    hidden = [(a, b, line) for a, b, line in hidden_imports(mods)
              if a != ROOT and (layer_of(b, lay) or 0) > (layer_of(a, lay) or 0)]
    private = [(a, b, n, line) for a, b, names, _, line in imps for n in names
               if n.startswith("_") and not n.startswith("__") and b != a]
    def top(x):
        return ".".join(x.split(".")[:2])
    across = [p for p in private if top(p[0]) != top(p[1])]
    long_files = {}
    for mod, path in mods.items():
        with open(path, encoding="utf-8") as f:
            k = sum(1 for _ in f)
        if k > LONG:
            long_files[mod] = k
    reads = node_reads(mods)
    return {"modules": len(mods), "imports": len(imps), "function_level": sum(1 for i in imps if i[3]),
            "cycles": cyc, "cycles_without_entry_points": cyc_kept, "upward": upward, "hidden_upward": hidden, "private": private, "private_across_packages": across, "facade": facade,
            "long_files": long_files, "node_reads": reads}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default="src")
    ap.add_argument("--pyproject", default="pyproject.toml")
    ap.add_argument("-v", "--verbose", action="store_true", help="list every finding")
    a = ap.parse_args(argv)
    m = measure(a.src, a.pyproject)
    in_cycles = sum(len(c) for c in m["cycles"])
    rows = [("modules", m["modules"]),
            ("imports within the package (inside functions)", f"{m['imports']} ({m['function_level']})"),
            ("import cycles (modules in them)", f"{len(m['cycles'])} ({in_cycles})"),
            ("  the same, documented display entry points left out",
             "%d (%d)" % (len(m["cycles_without_entry_points"]), sum(len(c) for c in m["cycles_without_entry_points"]))),
            ("upward imports across layers (documented entry points)",
             "%d (%d)" % (len(m["upward"]), sum(1 for u in m["upward"] if u[3]))),
            ("sys.modules / import_module look-ups of a higher layer", len(m["hidden_upward"])),
            ("imports of the facade `whence` from inside", len(m["facade"])),
            ("private names imported across modules (distinct)",
             f"{len(m['private'])} ({len({(b, n) for _, b, n, _ in m['private']})})"),
            ("  of them from another top-level module or package",
             "%d (%d)" % (len(m["private_across_packages"]),
                          len({(b, n) for _, b, n, _ in m["private_across_packages"]}))),
            ("reads of `._node` outside tracked.py", sum(m["node_reads"].values())),
            (f"files over {LONG} lines", len(m["long_files"]))]
    w = max(len(r[0]) for r in rows)
    for k, v in rows:
        print(f"{k:<{w}}  {v}")
    if a.verbose:
        for c in m["cycles"]:
            print("cycle:", ", ".join(c))
        for c in m["cycles_without_entry_points"]:
            print("cycle without the entry points:", ", ".join(c))
        for x in m["upward"]:
            print("upward: %s -> %s (line %d)%s" % (*x[:3], " [display entry point]" if x[3] else ""))
        for x in m["hidden_upward"]:
            print("look-up: %s -> %s (line %d)" % x)
        for x in m["facade"]:
            print("facade: %s -> %s" % x)
        for x in m["private"]:
            print("private: %s -> %s.%s (line %d)" % x)
        for k, v in sorted(m["long_files"].items()):
            print(f"long: {k} {v}")
    return m


if __name__ == "__main__":
    main()
