"""Maps to records and back: how each kind of lineage map is written to the store.

A map becomes a JSON-able dict (its kind and the parameters its constructor takes) plus the index arrays
it holds, which go to the store's ``arrays`` table and are referenced from the dict.  Reading a record back
gives a map of the same class with the same parameters, so that a query on a reopened store runs the same
code, and gives the same answer, as the query on the live objects.  Index arrays are read only when a query
first needs them.

Array references are ``{"ref": id}`` for a stored array, ``{"affine": [start, step], ...}`` for an integer
array ``start + step * arange(n)`` (identities, constant codes, window bounds: no bytes at all) and
``{"fill": value, ...}`` for a constant boolean array.
"""

from __future__ import annotations

import json

import numpy as np

from ..maps import (BandMap, ChainMap, ElementwiseMap, EinsumMap, GatherMap, LaneMap, OpaqueMap, PairsMap,
                    ReduceMap, UnionMap, ViewMap, gather_from_rows, rows_to_src)
from ..tracked import LiftMap

__all__ = ["ArrayWriter", "encode_map", "decode_map", "Unstorable"]


class Unstorable(Exception):
    """A map of a kind the store does not know how to write."""


# ------------------------------------------------------------------------------------------- array refs
class ArrayWriter:
    """Collects the index arrays of the maps being written, once each (arrays shared by several maps, such
    as the row relations of tables, are written once)."""

    def __init__(self):
        self.arrays = []  # (id, ndarray)
        self._by_obj = {}

    def put(self, a):
        if a is None:
            return None
        a = np.asarray(a)
        key = id(a)
        hit = self._by_obj.get(key)
        if hit is not None and hit[0] is a:
            return hit[1]
        ref = _inline(a)
        if ref is None:
            ref = {"ref": len(self.arrays)}
            self.arrays.append((len(self.arrays), a))
        self._by_obj[key] = (a, ref)
        return ref


def _inline(a):
    """A description with no bytes for arrays that are a fill or an arithmetic progression, else None."""
    n = a.size
    if a.dtype == np.bool_:
        if n and (a.all() or not a.any()):
            return {"fill": bool(a.flat[0]), "dtype": "bool", "shape": list(a.shape)}
        return None
    if a.dtype.kind not in "iu" or n < 2:
        return None
    flat = a.reshape(-1)
    start, step = int(flat[0]), int(flat[1]) - int(flat[0])
    if flat[-1] != start + step * (n - 1):
        return None
    if not np.array_equal(flat, start + step * np.arange(n, dtype=np.int64)):
        return None
    return {"affine": [start, step], "dtype": a.dtype.str, "shape": list(a.shape)}


def resolve(ref, load):
    """The array a reference describes; ``load(id)`` reads a stored one."""
    if ref is None:
        return None
    if "ref" in ref:
        return load(ref["ref"])
    shape = tuple(ref["shape"])
    if "fill" in ref:
        return np.full(shape, ref["fill"], bool)
    start, step = ref["affine"]
    n = int(np.prod(shape)) if shape else 1
    return (start + step * np.arange(n, dtype=np.int64)).astype(np.dtype(ref["dtype"])).reshape(shape)


def _lazy(ref, load):
    cell = []

    def get():
        if not cell:
            cell.append(resolve(ref, load))
        return cell[0]
    return get


# ------------------------------------------------------------------------------------------------ labels
def _enc_label(lab):
    if isinstance(lab, tuple):
        return {"t": [_enc_label(v) for v in lab]}
    if isinstance(lab, (bool, np.bool_)):
        return {"b": bool(lab)}
    if isinstance(lab, (int, np.integer)):
        return int(lab)
    if isinstance(lab, str):
        return lab
    raise Unstorable(f"an einsum label of type {type(lab).__name__}")


def _dec_label(v):
    if isinstance(v, dict):
        if "t" in v:
            return tuple(_dec_label(x) for x in v["t"])
        return bool(v["b"])
    return v


def _enc_key(key):
    out = []
    for k in key:
        if k is None:
            out.append(None)
        elif isinstance(k, slice):
            out.append({"slice": [None if v is None else int(v) for v in (k.start, k.stop, k.step)]})
        else:
            out.append(int(k))
    return out


def _dec_key(key):
    return tuple(None if k is None else slice(*k["slice"]) if isinstance(k, dict) else int(k) for k in key)


def _shapes(shapes):
    return [list(map(int, s)) for s in shapes]


def _tup(s):
    return tuple(int(v) for v in s)


# -------------------------------------------------------------------------------------------------- maps
def encode_map(m, w):
    """``(record, extra_partial_reason)`` for map ``m``; index arrays go to the :class:`ArrayWriter` ``w``.

    Raises :class:`Unstorable` for a map of a kind the store does not cover.
    """
    t = type(m)
    if isinstance(m, GatherMap) and m.lazy:
        # a gather whose index array is lazy (Dask): computed here, stored as an ordinary gather (for arrays too
        # large for that, reference the relation written on the workers: save(..., datasets=...))
        src = np.asarray(m.src())
        return {"kind": "gather", "out_shape": list(map(int, m.out_shape)),
                "parent_shapes": _shapes(m.parent_shapes), "src": w.put(src)}
    out = {"out_shape": list(map(int, m.out_shape)), "parent_shapes": _shapes(m.parent_shapes)}
    if t is ElementwiseMap:
        out.update(kind="elementwise", valid=w.put(m.valid))
    elif t is ReduceMap:
        al = m._aligns
        out.update(kind="reduce", in_shape=list(map(int, m.in_shape)), axes=list(map(int, m.axes)),
                   aligns=None if al is None else [None if a is None else list(map(int, a)) for a in al],
                   where=w.put(None if m.where is None else np.asarray(m.where)))
    elif t is LaneMap:
        out.update(kind="lane", axes=list(map(int, m.axes)))
    elif t is BandMap:
        out.update(kind="band", bands=[[ax, w.put(lo), w.put(hi)] for ax, lo, hi in m.bands])
    elif t is EinsumMap:
        out.update(kind="einsum", op_labels=[[_enc_label(v) for v in labs] for labs in m._op_labels],
                   out_labels=[_enc_label(v) for v in m.out_labels])
    elif t is GatherMap:
        src = np.asarray(m._src())
        rows = _exact_rows(m, src)
        if rows is not None:  # a few runs of the index array describe it exactly: the rows, no array
            out.update(kind="gather", rows=rows)
        else:
            out.update(kind="gather", src=w.put(src))
    elif t is PairsMap:
        pairs = []
        for k in range(len(m.parent_shapes)):
            o, i = m._pairs(k)
            pairs.append([w.put(np.asarray(o)), w.put(np.asarray(i))])
        out.update(kind="pairs", pairs=pairs)
    elif t is OpaqueMap:
        out.update(kind="opaque")
    elif t is ChainMap:
        out.update(kind="chain", maps=[encode_map(sub, w) for sub in m.maps])
    elif t is UnionMap:
        out.update(kind="union", parts=[{"map": encode_map(sub, w), "ix": list(map(int, ix))}
                                        for sub, ix in m.parts])
    elif t is ViewMap:
        arg = m.arg
        if m.how == "slice":
            arg = _enc_key(arg)
        elif m.how == "transpose":
            arg = list(map(int, arg))
        else:
            arg = None
        out.update(kind="view", how=m.how, arg=arg)
    elif t is LiftMap:
        out.update(kind="lift", inner=encode_map(m.inner, w), pos=w.put(np.asarray(m.pos_fn())))
    elif m.kind == "table":
        out.update(kind="table", nidx=int(m.nidx), n_inputs=int(m.n_inputs), entries=[
            {"k": int(k), "control": bool(p.control), "wide": bool(p.wide), "cmat": w.put(p.cmat),
             "rel": _enc_rel(p.rel, w)} for k, p in m.entries])
    else:
        raise Unstorable(f"a lineage map of type {t.__name__}")
    return out


def _exact_rows(m, stored):
    """The rectangle rows of gather ``m`` as JSON lists, when they give back its index array exactly (checked
    here, once, at the save) and take fewer bytes than the index array ``stored`` would; None otherwise (the
    index array is then the compressed form)."""
    rows = m.rectangles()
    if rows is None:
        return None
    enc = [[int(r[0])] + [list(map(int, v)) for v in r[1:]] for r in rows]
    if _inline(stored) is not None or len(json.dumps(enc, separators=(",", ":"))) >= stored.nbytes:
        return None  # (an arithmetic progression is written with no bytes at all)
    src = rows_to_src(rows, m.out_shape, m.parent_shapes)
    if src is None or not np.array_equal(src, np.asarray(m.src(), np.int64)):
        return None
    return enc


def _enc_rel(rel, w):
    d = {"n_out": rel.n_out, "n_src": rel.n_src, "all_rows": bool(rel.all_rows), "codes": w.put(rel.codes)}
    if rel.csr is not None:
        ip, ix = rel.csr.get()
        d["indptr"], d["indices"] = w.put(ip), w.put(ix)
    return d


def decode_map(d, load, parents=None):
    """The map a record describes; ``load(id)`` reads a stored index array (called lazily, at query time);
    ``parents`` are the nodes of the map's parents (tables keep them in their parts)."""
    kind = d["kind"]
    out_shape = _tup(d["out_shape"])
    pshapes = tuple(_tup(s) for s in d["parent_shapes"])
    if kind == "elementwise":
        return ElementwiseMap(out_shape, pshapes, resolve(d["valid"], load))
    if kind == "reduce":
        al = d["aligns"]
        return ReduceMap(_tup(d["in_shape"]), _tup(d["axes"]), out_shape, pshapes,
                         None if al is None else tuple(None if a is None else _tup(a) for a in al),
                         resolve(d["where"], load))
    if kind == "lane":
        return LaneMap(out_shape, d["axes"], pshapes)
    if kind == "band":
        bands = d["bands"]
        return BandMap(out_shape, pshapes[0],
                       lambda: [(ax, resolve(lo, load), resolve(hi, load)) for ax, lo, hi in bands])
    if kind == "einsum":
        return EinsumMap([tuple(_dec_label(v) for v in labs) for labs in d["op_labels"]],
                         tuple(_dec_label(v) for v in d["out_labels"]), out_shape, pshapes)
    if kind == "gather":
        if "rows" in d:
            return gather_from_rows(out_shape, pshapes, [(r[0],) + tuple(tuple(v) for v in r[1:]) for r in d["rows"]])
        return GatherMap(out_shape, pshapes, _lazy(d["src"], load))
    if kind == "pairs":
        getters = [(_lazy(o, load), _lazy(i, load)) for o, i in d["pairs"]]
        return PairsMap(out_shape, pshapes, lambda k: (getters[k][0](), getters[k][1]()))
    if kind == "opaque":
        return OpaqueMap(out_shape, pshapes)
    if kind == "chain":
        return ChainMap([decode_map(sub, load) for sub in d["maps"]])
    if kind == "union":
        return UnionMap(out_shape, pshapes, [(decode_map(p["map"], load), tuple(p["ix"])) for p in d["parts"]])
    if kind == "view":
        how, arg = d["how"], d["arg"]
        if how == "slice":
            arg = _dec_key(arg)
        elif how == "transpose":
            arg = tuple(arg)
        return ViewMap(out_shape, pshapes[0], how, arg)
    if kind == "lift":
        return LiftMap(decode_map(d["inner"], load), out_shape, _lazy(d["pos"], load))
    if kind == "table":
        return _stored_table_map(d, out_shape, pshapes, load, parents)
    raise ValueError(f"unknown map kind {kind!r} in the store")


_TABLE_CLASS: list = []


def _stored_table_map(d, out_shape, pshapes, load, parents):
    if not _TABLE_CLASS:
        from ..tabular.relations import TableMap

        class StoredTableMap(TableMap):
            """A table map whose row relations are read from the store when a query first needs them."""

            def __init__(self, d, out_shape, pshapes, load, parents):  # the base constructor is not called
                self.out_shape = out_shape
                self.parent_shapes = pshapes
                self.nidx = d["nidx"]
                self.n_inputs = d["n_inputs"]
                self.ncols = 1 if len(out_shape) < 2 else out_shape[1]
                self._spec = (d["entries"], load, parents)
                self._loaded = None

            @property
            def entries(self):
                if self._loaded is None:
                    self._loaded = _table_entries(*self._spec)
                return self._loaded

        _TABLE_CLASS.append(StoredTableMap)
    return _TABLE_CLASS[0](d, out_shape, pshapes, load, parents)


def _table_entries(entries, load, parents):
    from ..tabular.relations import Part, RowRel, CSR as _CSR
    out = []
    for e in entries:
        r = e["rel"]
        csr = None
        if "indptr" in r:
            csr = _CSR(resolve(r["indptr"], load), resolve(r["indices"], load))
        codes = resolve(r["codes"], load)
        if codes is not None:
            codes = codes.astype(np.int64, copy=False)
        rel = RowRel(r["n_out"], r["n_src"], codes, csr, r["all_rows"])
        out.append((e["k"], Part(parents[e["k"]], rel, resolve(e["cmat"], load), e["control"], e["wide"])))
    return out
