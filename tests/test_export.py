"""The exports (whence.export): Parquet, W3C PROV-JSON and OpenLineage.

PROV-JSON documents are validated against the W3C schema shipped by the ``prov`` package, OpenLineage events
against the OpenLineage spec files vendored in ``tests/schemas/openlineage`` (see ``tests/schemas/README.md``),
both with ``jsonschema`` and offline.  Structure is checked against the graph and against ``wh.backward``.
"""

import datetime as dt
import importlib.resources
import io
import json
import os
import sys
import uuid
from pathlib import Path

import jsonschema  # the validators are dev requirements (pyproject "dev" extra): validation must run
import numpy as np
import pytest
import referencing

import whence as wh
from whence.query import _node_of, _upstream

sys.path.insert(0, str(Path(__file__).resolve().parent))
from oracle import per_cell_pairs  # noqa: E402
from whence.store import export as ex

SCHEMAS = Path(__file__).parent / "schemas" / "openlineage"


@pytest.fixture
def pq():
    return pytest.importorskip("pyarrow.parquet")  # the Parquet export needs pyarrow (store/pandas extras)


# ----------------------------------------------------------------------------------------- validators
@pytest.fixture(scope="module")
def prov_validator():
    try:
        text = (importlib.resources.files("prov.tests") / "schemas" / "prov-json.schema.json").read_text()
    except (ModuleNotFoundError, FileNotFoundError) as e:  # pragma: no cover - dev extra missing
        pytest.fail(f"the PROV-JSON schema comes from the 'prov' package (dev extra): {e}")
    schema = json.loads(text)
    assert schema["id"] == "http://provenance.ecs.soton.ac.uk/prov-json/schema#"
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@pytest.fixture(scope="module")
def ol_registry():
    from referencing.jsonschema import DRAFT202012
    docs = {}
    for f in sorted(SCHEMAS.glob("*.json")):
        contents = json.loads(f.read_text())
        docs[contents["$id"]] = DRAFT202012.create_resource(contents)
    core = docs["https://openlineage.io/spec/2-0-0/OpenLineage.json"]
    # the facets refer to DatasetFacet in other core versions; the vendored 2-0-0 core stands in (README)
    for uri in ("https://openlineage.io/spec/2-0-2/OpenLineage.json",
                "https://openlineage.io/spec/1-0-2/OpenLineage.json"):
        docs[uri] = core
    return referencing.Registry().with_resources(docs.items())


def _check_ol(registry, url, instance):
    base = url.split("#")[0]
    assert base in {json.loads(f.read_text())["$id"] for f in SCHEMAS.glob("*.json")}, url
    v = jsonschema.Draft202012Validator({"$ref": url}, registry=registry,
                                        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    errors = sorted(v.iter_errors(instance), key=str)
    assert not errors, "\n".join(str(e) for e in errors)


def validate_events(registry, events):
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    assert events[0]["run"]["runId"] == events[1]["run"]["runId"]
    uuid.UUID(events[0]["run"]["runId"])
    for e in events:
        assert e["schemaURL"] == ex.OPENLINEAGE_SCHEMA_URL
        _check_ol(registry, e["schemaURL"], e)
        t = dt.datetime.fromisoformat(e["eventTime"])
        assert t.tzinfo is not None
        for ds in e["inputs"] + e["outputs"]:
            for facet in ds.get("facets", {}).values():
                _check_ol(registry, facet["_schemaURL"], facet)
    json.dumps(events)  # JSON-ready


def validate_prov(validator, doc):
    errors = sorted(validator.iter_errors(doc), key=str)
    assert not errors, "\n".join(str(e) for e in errors)
    # and the reference implementation reads it back
    import prov
    back = prov.read(io.StringIO(json.dumps(doc)), format="json")
    from prov.model import ProvActivity
    assert len([r for r in back.get_records() if isinstance(r, ProvActivity)]) == len(doc.get("activity", {}))


def test_the_validators_are_not_vacuous(ab, prov_validator, ol_registry):
    """Broken documents are rejected, so that the validations above mean something."""
    y = ab[3]
    doc = ex.prov_json(y)
    bad = json.loads(json.dumps(doc))
    bad["entities"] = bad.pop("entity")  # not a PROV-JSON section
    assert list(prov_validator.iter_errors(bad))
    bad = json.loads(json.dumps(doc))
    next(iter(bad["wasGeneratedBy"].values())).pop("prov:entity")
    assert list(prov_validator.iter_errors(bad))
    ev = ex.openlineage(y, job="j", namespace="n")
    bad = json.loads(json.dumps(ev[1]))
    del bad["run"]
    with pytest.raises(AssertionError):
        _check_ol(ol_registry, bad["schemaURL"], bad)
    bad = json.loads(json.dumps(ev[1]))
    bad["run"]["runId"] = "not-a-uuid"
    with pytest.raises(AssertionError):
        _check_ol(ol_registry, bad["schemaURL"], bad)
    facet = json.loads(json.dumps(ev[1]["outputs"][0]["facets"]["columnLineage"]))
    facet["fields"]["value"]["inputFields"][0].pop("field")
    with pytest.raises(AssertionError):
        _check_ol(ol_registry, facet["_schemaURL"], facet)
    facet = json.loads(json.dumps(ev[1]["inputs"][0]["facets"]["schema"]))
    facet.pop("_producer")
    with pytest.raises(AssertionError):
        _check_ol(ol_registry, facet["_schemaURL"], facet)


# ------------------------------------------------------------------------------------------- helpers
def fields_from_backward(y, j, names, control=False):
    """(dataset, field) pairs of column ``j`` of ``y``, straight from wh.backward."""
    kw = {"columns": [j]} if np.ndim(np.empty(_node_of(y).shape)) >= 2 else {}
    r = wh.backward(y, control=control, **kw)
    out = set()
    for src, cells in r.items():
        if cells.shape[1] >= 2:
            out |= {(src, names[src][c]) for c in np.unique(cells[:, 1])}
        else:
            out.add((src, "value"))
    return out


def lineage_fields(events, col, kind="DIRECT", key="name"):
    fields = events[1]["outputs"][0]["facets"]["columnLineage"]["fields"][col]["inputFields"]
    return {(f[key], f["field"]) for f in fields if any(t["type"] == kind for t in f["transformations"])}


def roles_used(doc):
    return sorted(u["prov:role"] for u in doc.get("used", {}).values())


# ------------------------------------------------------------------------------ class A/B array pipeline
@pytest.fixture
def ab():
    wh.reset()
    a = wh.track(np.arange(12.0).reshape(4, 3), name="a")
    b = wh.track(np.array([1.0, 2.0, 3.0]), name="b")
    z = (a * b)[:, ::-1].T            # class A: broadcasting, slicing, transpose -> shape (3, 4)
    y = np.cumsum(z, axis=1).sum(axis=0) + 1.0   # class B -> shape (4,)
    return a, b, z, y


def test_prov_json_of_an_array_pipeline_is_schema_valid(ab, prov_validator):
    *_, y = ab
    doc = ex.prov_json(y)
    validate_prov(prov_validator, doc)
    assert doc["prefix"] == {"whence": "urn:whence:", "prov": "http://www.w3.org/ns/prov#"}
    assert sorted(v["prov:label"] for v in doc["activity"].values()) == sorted(wh.ops(y))
    assert len(doc["activity"]) == len(wh.ops(y)) == len(doc["wasGeneratedBy"])
    ents = doc["entity"]
    srcs = {v["whence:source"]: k for k, v in ents.items() if v["whence:role"] == "source"}
    assert set(srcs) == {"a", "b"}
    assert ents[srcs["a"]]["whence:shape"] == "[4, 3]" and ents[srcs["a"]]["whence:kind"] == "array"
    out = [v for v in ents.values() if v["whence:role"] == "output"]
    assert len(out) == 1 and out[0]["whence:node"] == _node_of(y).id
    assert all(v["whence:completeness"] == "FULL" for v in ents.values())
    # every entity other than the sources is generated by the activity of its node
    gen = {g["prov:entity"]: g["prov:activity"] for g in doc["wasGeneratedBy"].values()}
    for k, v in ents.items():
        if v["whence:role"] != "source":
            assert doc["activity"][gen[k]]["whence:node"] == v["whence:node"]
    # one used and one derivation per graph edge: multiply used a and b as inputs
    mult = next(k for k, v in doc["activity"].items() if v["prov:label"] == "multiply")
    used = {doc["entity"][u["prov:entity"]].get("whence:source") for u in doc["used"].values()
            if u["prov:activity"] == mult}
    assert used == {"a", "b"}
    n_edges = sum(len(n.parents) for n in _upstream(_node_of(y)))
    assert len(doc["used"]) == n_edges == len(doc["wasDerivedFrom"])
    assert set(roles_used(doc)) == {"input"}


def test_prov_json_options(ab, prov_validator):
    _, _, _, y = ab
    doc = ex.prov_json(y, namespace="https://example.org/lineage/", run="run-7")
    validate_prov(prov_validator, doc)
    assert doc["prefix"]["whence"] == "https://example.org/lineage/"
    assert all(k.startswith("whence:run-7.") for sec in ("entity", "activity", "used") for k in doc[sec])
    assert all(v["whence:run"] == "run-7" for v in doc["activity"].values())
    text = ex.prov_json(y, as_string=True)
    assert json.loads(text) == ex.prov_json(y)


def test_openlineage_of_an_array_pipeline(ab, ol_registry):
    a, _, z, _ = ab
    names = {"a": [f"col{j}" for j in range(3)], "b": ["value"]}
    run = uuid.uuid4()
    ev = ex.openlineage(z, job="arrays", namespace="whence-tests", run_id=run, producer="https://example.org/p")
    validate_events(ol_registry, ev)
    assert ev[0]["run"]["runId"] == str(run) and ev[1]["producer"] == "https://example.org/p"
    assert ev[0]["job"] == {"namespace": "whence-tests", "name": "arrays"}
    inputs = {d["name"]: d for d in ev[1]["inputs"]}
    assert set(inputs) == {"a", "b"} and all(d["namespace"] == "whence-tests" for d in inputs.values())
    assert [f["name"] for f in inputs["a"]["facets"]["schema"]["fields"]] == names["a"]
    assert [f["name"] for f in inputs["b"]["facets"]["schema"]["fields"]] == ["value"]
    out = ev[1]["outputs"][0]
    assert out["name"] == "arrays.output"
    assert [f["name"] for f in out["facets"]["schema"]["fields"]] == [f"col{j}" for j in range(4)]
    # z = (a * b)[:, ::-1].T: output column j is input row j: every column of a, all of b
    for j in range(4):
        assert lineage_fields(ev, f"col{j}") == fields_from_backward(z, j, names) == \
            {("a", "col0"), ("a", "col1"), ("a", "col2"), ("b", "value")}
        assert lineage_fields(ev, f"col{j}", "INDIRECT") == set()
    # a 1-D output has one field
    ev = ex.openlineage(a[:, 2] * 2, job="arrays", namespace="whence-tests")
    validate_events(ol_registry, ev)
    assert set(ev[1]["outputs"][0]["facets"]["columnLineage"]["fields"]) == {"value"}
    assert lineage_fields(ev, "value") == {("a", "col2")}


def test_internal_steps_are_linked_through(prov_validator):
    wh.reset()
    a = wh.track(np.arange(9.0).reshape(3, 3), name="a")
    y = np.trace(a) * 2
    assert any(n.internal for n in _upstream(_node_of(y)))
    doc = ex.prov_json(y)
    validate_prov(prov_validator, doc)
    assert sorted(v["prov:label"] for v in doc["activity"].values()) == sorted(wh.ops(y)) == ["multiply", "trace"]
    internal = {n.id for n in _upstream(_node_of(y)) if n.internal}
    assert not {v["whence:node"] for v in doc["entity"].values() if "whence:node" in v} & internal
    trace = next(k for k, v in doc["activity"].items() if v["prov:label"] == "trace")
    used = [doc["entity"][u["prov:entity"]].get("whence:source") for u in doc["used"].values()
            if u["prov:activity"] == trace]
    assert used == ["a"]


def test_partial_operations_are_marked(prov_validator, ol_registry):
    wh.reset()
    a = wh.track(np.arange(4.0).reshape(2, 2) + np.eye(2), name="a")
    with pytest.warns(wh.PartialLineageWarning):
        y = np.linalg.inv(a) + 1.0
    doc = ex.prov_json(y)
    validate_prov(prov_validator, doc)
    inv = next(v for v in doc["activity"].values() if v["prov:label"] == "inv")
    assert inv["whence:completeness"] == "PARTIAL" and "opaque" in inv["whence:reason"]
    add = next(v for v in doc["activity"].values() if v["prov:label"] == "add")
    assert add["whence:completeness"] == "FULL" and "whence:reason" not in add
    out = next(v for v in doc["entity"].values() if v["whence:role"] == "output")
    assert out["whence:completeness"] == "PARTIAL"  # as a query on it reports
    src = next(v for v in doc["entity"].values() if v["whence:role"] == "source")
    assert src["whence:completeness"] == "FULL"
    ev = ex.openlineage(y, job="j", namespace="n")
    validate_events(ol_registry, ev)
    f = ev[1]["outputs"][0]["facets"]["columnLineage"]["fields"]["col0"]["inputFields"]
    assert {x["field"] for x in f} == {"col0", "col1"}
    assert all("PARTIAL" in t["description"] for x in f for t in x["transformations"])


# -------------------------------------------------------------------- class C: masks, sorts, where
@pytest.fixture
def cpipe():
    wh.reset()
    a = wh.track(np.array([[3.0, 1.0, 7.0], [0.0, 5.0, 2.0], [4.0, 4.0, 9.0], [8.0, 0.0, 1.0]]), name="a")
    m = a[a[:, 0] > 2]                # boolean mask rows 0, 2, 3 (control: a[:, 0])
    s = np.sort(m, axis=0)            # data-dependent permutation
    w = np.where(s > 4, s, 0.0)       # condition is control
    return a, m, s, w


def test_class_c_exports_validate(cpipe, prov_validator, ol_registry):
    *_, w = cpipe
    doc = ex.prov_json(w)
    validate_prov(prov_validator, doc)
    assert len(doc["activity"]) == len(wh.ops(w))
    assert "control" in roles_used(doc) and "input" in roles_used(doc)
    # the mask of getitem is a control input: its derivation says so
    get = next(k for k, v in doc["activity"].items() if v["prov:label"] == "getitem" and
               any(u["prov:activity"] == k and u["prov:role"] == "control" for u in doc["used"].values()))
    assert any(d["prov:activity"] == get and d["whence:roles"] == ["control"] for d in doc["wasDerivedFrom"].values())
    ev = ex.openlineage(w, job="masks", namespace="whence-tests")
    validate_events(ol_registry, ev)


def test_openlineage_direct_and_indirect_fields_match_backward(cpipe, ol_registry):
    _, m, _, _ = cpipe
    names = {"a": ["col0", "col1", "col2"]}
    ev = ex.openlineage(m, job="masks", namespace="ns")
    validate_events(ol_registry, ev)
    for j in range(3):
        direct = fields_from_backward(m, j, names)
        assert lineage_fields(ev, f"col{j}") == direct == {("a", f"col{j}")}
    # the mask a[:, 0] > 2 chose the rows: column 0 of a is an INDIRECT input of columns 1 and 2 (for column 0
    # the mask cells of the kept rows are the very cells copied, so it is DIRECT only)
    assert lineage_fields(ev, "col0", "INDIRECT") == set()
    for j in (1, 2):
        assert lineage_fields(ev, f"col{j}", "INDIRECT") == {("a", "col0")}
        assert lineage_fields(ev, f"col{j}", "INDIRECT") | lineage_fields(ev, f"col{j}") == \
            fields_from_backward(m, j, names, control=True)


def test_parquet_describes_every_operation(cpipe, tmp_path, pq):
    a, _, _, w = cpipe
    c = a.copy()
    c[c > 4] = -1.0                   # in-place write: a union with a lifted control map
    y = np.concatenate([w, c])
    files = ex.parquet(y, tmp_path / "out")
    names = sorted(os.path.basename(f) for f in files)
    assert names == ["index_arrays.parquet", "op_pairs.parquet", "ops.parquet", "rectangles.parquet",
                     "sources.parquet", "table_relations.parquet"]
    assert all(os.path.isfile(f) for f in files)
    t = {n[:-8]: pq.read_table(tmp_path / "out" / n).to_pylist() for n in names}
    ops = [r for r in t["ops"] if r["parents"] and not r["composed"]]  # composed: covered by a reader's map
    covered = ({r["op_id"] for r in t["rectangles"]} | {r["op_id"] for r in t["index_arrays"]}
               | {r["op_id"] for r in t["op_pairs"]} | {r["node_id"] for r in t["table_relations"]})
    assert {r["id"] for r in ops} <= covered  # nothing is left out silently
    assert t["sources"] == [{"name": "a", "node_id": _node_of(a).id,
                             "kind": "array", "shape": [4, 3], "path": None, "format": None, "n_rows": None,
                             "size": None, "mtime_ns": None, "sha256": None, "columns": None}]
    # the explicit one-hop pairs are the map's own relation, cell by cell
    nodes = {n.id: n for n in _upstream(_node_of(y))}
    assert t["op_pairs"]
    for r in t["op_pairs"]:
        n = nodes[r["op_id"]]
        assert n.parents[r["parent_pos"]].id == r["parent_id"]
        assert r["control"] == (r["parent_pos"] in n.control)
        got = np.array([r["out_flat"], r["in_flat"]], np.int64).T.reshape(-1, 2)
        np.testing.assert_array_equal(got, per_cell_pairs(n, r["parent_pos"]))
    # the data-dependent copies are there as rectangles (where their index arrays are a few runs) or as pairs
    assert {"getitem", "where", "setitem"} <= {r["op"] for r in t["op_pairs"]} | {r["op"] for r in t["rectangles"]}


def test_parquet_pairs_and_reuses_relation(ab, tmp_path, pq):
    _, _, z, _ = ab
    files = ex.parquet(z, str(tmp_path), pairs=True)
    assert "pairs.parquet" in {os.path.basename(f) for f in files}
    pairs = pq.read_table(tmp_path / "pairs.parquet").to_pandas()
    ref = wh.lineage(z).pairs("a")
    got = pairs[pairs["source"] == "a"][["out0", "out1", "in0", "in1"]].to_numpy()
    np.testing.assert_array_equal(np.unique(got, axis=0), np.unique(ref, axis=0))
    rects = pq.read_table(tmp_path / "rectangles.parquet")
    assert rects.num_rows == len(wh.lineage(z).rectangles()["op_id"])
    assert pq.read_table(tmp_path / "op_pairs.parquet").num_rows == 0
    assert pq.read_table(tmp_path / "table_relations.parquet").num_rows == 0


# ---------------------------------------------------------------------------------- pandas pipeline
@pytest.fixture
def frames(tmp_path):
    pytest.importorskip("pandas")
    apps_csv = tmp_path / "apps.csv"
    bureau_csv = tmp_path / "bureau.csv"
    apps_csv.write_text("id,income,age\n1,10,30\n2,20,40\n3,30,50\n4,40,60\n")
    bureau_csv.write_text("id,debt\n1,5\n1,7\n2,3\n4,1\n4,2\n")
    wh.reset()
    apps = wh.read_csv(apps_csv, name="apps")
    bureau = wh.read_csv(bureau_csv, name="bureau")
    debt = bureau.groupby("id", as_index=False)["debt"].sum()
    joined = apps.merge(debt, on="id", how="left")
    rich = joined[joined["income"] > 15]
    X = rich[["income", "age", "debt"]].to_numpy()
    return apps_csv, bureau_csv, rich, X


CSV_COLS = {"apps": ["id", "income", "age"], "bureau": ["id", "debt"]}


def test_prov_json_of_a_pandas_pipeline(frames, prov_validator):
    apps_csv, bureau_csv, _, X = frames
    doc = ex.prov_json(X)
    validate_prov(prov_validator, doc)
    assert len(doc["activity"]) == len(wh.ops(X))
    files = {v["whence:path"]: (k, v) for k, v in doc["entity"].items() if "whence:path" in v}
    assert set(files) == {str(apps_csv.resolve()), str(bureau_csv.resolve())}
    k, f = files[str(apps_csv.resolve())]
    assert f["whence:format"] == "csv" and f["whence:size"] == apps_csv.stat().st_size
    # the source table derives from its file
    src = next(e for e, v in doc["entity"].items() if v.get("whence:source") == "apps")
    assert any(d["prov:generatedEntity"] == src and d["prov:usedEntity"] == k
               for d in doc["wasDerivedFrom"].values())
    assert doc["entity"][src]["whence:columns"] == CSV_COLS["apps"]
    assert doc["entity"][src]["whence:kind"] == "table" and doc["entity"][src]["whence:n_rows"] == 4
    # group keys, join keys and the filter mask are control inputs; frames operated on are operands
    assert {"input", "control", "operand"} <= set(roles_used(doc))


def test_openlineage_of_a_pandas_pipeline(frames, ol_registry):
    apps_csv, bureau_csv, _, X = frames
    ev = ex.openlineage(X, job="credit", namespace="whence-tests")
    validate_events(ol_registry, ev)
    inputs = {(d["namespace"], d["name"]): d for d in ev[1]["inputs"]}
    apps_id, bureau_id = ("file", str(apps_csv.resolve())), ("file", str(bureau_csv.resolve()))
    assert set(inputs) == {apps_id, bureau_id}
    assert [f["name"] for f in inputs[apps_id]["facets"]["schema"]["fields"]] == CSV_COLS["apps"]
    assert [f["name"] for f in inputs[bureau_id]["facets"]["schema"]["fields"]] == CSV_COLS["bureau"]
    path = {"apps": str(apps_csv.resolve()), "bureau": str(bureau_csv.resolve())}
    for j in range(3):
        want = {(path[s], f) for s, f in fields_from_backward(X, j, CSV_COLS)}
        assert lineage_fields(ev, f"col{j}") == want
        both = {(path[s], f) for s, f in fields_from_backward(X, j, CSV_COLS, control=True)}
        assert lineage_fields(ev, f"col{j}") | lineage_fields(ev, f"col{j}", "INDIRECT") == both
    # the known answer: debt is the sum of bureau.debt, grouped by bureau.id, joined on apps.id, and the rows
    # kept were chosen by apps.income > 15
    assert lineage_fields(ev, "col2") == {(path["bureau"], "debt")}
    assert lineage_fields(ev, "col2", "INDIRECT") == {(path["bureau"], "id"), (path["apps"], "id"),
                                                      (path["apps"], "income")}
    assert lineage_fields(ev, "col0") == {(path["apps"], "income")}


def test_openlineage_of_a_frame_uses_its_column_names(frames, ol_registry):
    apps_csv, _, rich, _ = frames
    ev = ex.openlineage(rich, job="credit", namespace="whence-tests", name="rich_applicants")
    validate_events(ol_registry, ev)
    out = ev[1]["outputs"][0]
    assert out["name"] == "rich_applicants"
    assert list(out["facets"]["columnLineage"]["fields"]) == ["id", "income", "age", "debt"]
    assert lineage_fields(ev, "age") == {(str(apps_csv.resolve()), "age")}
    # a series: one field named after it
    ev = ex.openlineage(rich["debt"] * 2, job="credit", namespace="whence-tests")
    validate_events(ol_registry, ev)
    assert list(ev[1]["outputs"][0]["facets"]["columnLineage"]["fields"]) == ["debt"]


def test_parquet_of_a_pandas_pipeline(frames, tmp_path, pq):
    apps_csv, _, _, X = frames
    out = tmp_path / "export"
    ex.parquet(X, out)
    srcs = {r["name"]: r for r in pq.read_table(out / "sources.parquet").to_pylist()}
    assert srcs["apps"]["path"] == str(apps_csv.resolve()) and srcs["apps"]["kind"] == "table"
    assert srcs["apps"]["format"] == "csv" and srcs["apps"]["n_rows"] == 4 and srcs["apps"]["shape"] == [4, 3]
    assert srcs["bureau"]["columns"] == CSV_COLS["bureau"]
    rows = pq.read_table(out / "table_relations.parquet").to_pylist()
    tables = {n.id for n in _upstream(_node_of(X)) if getattr(n.map, "kind", None) == "table"}
    assert {r["node_id"] for r in rows} == tables
    # the group-by: output row g derives from the bureau rows of group g (ids 1, 2, 4)
    g = next(r for r in rows if r["op"] == "groupby.sum" and not r["control"])
    assert sorted(zip(g["out_rows"], g["in_rows"])) == [(0, 0), (0, 1), (1, 2), (2, 3), (2, 4)]
    assert sorted(zip(g["out_cols"], g["in_cols"])) == [(0, 0), (1, 1)]
    # parts that share a row relation point to it; its pairs are written once
    by_rel = {}
    for r in rows:
        by_rel.setdefault(r["rel_id"], []).append(r)
    for rs in by_rel.values():
        assert sum(r["out_rows"] is not None for r in rs) == (0 if rs[0]["all_rows"] else 1)
    # the relation written matches a backward query on the last table, cell by cell
    last = next(r for r in rows if r["node_id"] == _node_of(X).id and not r["control"] and r["parent_id"] ==
                next(n.id for n in _upstream(_node_of(X)) if n.name == "apps"))
    rel = next(r for r in rows if r["rel_id"] == last["rel_id"] and r["out_rows"] is not None)
    for i, c in ((0, 0), (2, 1)):
        want = wh.backward(X, (i, c))["apps"]
        src_rows = [s for o, s in zip(rel["out_rows"], rel["in_rows"]) if o == i]
        src_cols = [ic for oc, ic in zip(last["out_cols"], last["in_cols"]) if oc == c]
        assert sorted(map(tuple, want.tolist())) == sorted((r, cc) for r in src_rows for cc in src_cols)


# ------------------------------------------------------------------------------------- store handles
def test_exports_of_a_store_handle_equal_the_live_ones(frames, tmp_path, pq, prov_validator, ol_registry):
    pytest.importorskip("duckdb")
    _, _, _, X = frames
    path = tmp_path / "run.duckdb"
    wh.save(path, run="etl", X=X)
    h = wh.open(path)["etl"]["X"]
    live, stored = ex.prov_json(X), ex.prov_json(h)
    validate_prov(prov_validator, stored)
    assert sorted(v["prov:label"] for v in stored["activity"].values()) == \
        sorted(v["prov:label"] for v in live["activity"].values())
    assert len(stored["used"]) == len(live["used"]) and len(stored["entity"]) == len(live["entity"])
    files = [v for v in stored["entity"].values() if "whence:path" in v]
    assert len(files) == 2 and all(len(v["whence:sha256"]) == 64 for v in files)
    ev_live = ex.openlineage(X, job="j", namespace="n", name="X")
    ev_stored = ex.openlineage(h, job="j", namespace="n")
    validate_events(ol_registry, ev_stored)
    assert ev_stored[1]["outputs"] == ev_live[1]["outputs"] and ev_stored[1]["inputs"] == ev_live[1]["inputs"]
    ex.parquet(h, tmp_path / "from_store")
    assert pq.read_table(tmp_path / "from_store" / "table_relations.parquet").num_rows > 0


# ------------------------------------------------------------------------------------------ bad input
def test_untracked_input_is_refused(tmp_path):
    plain = np.ones((2, 2))
    with pytest.raises(wh.NotTrackedError):
        ex.prov_json(plain)
    with pytest.raises(wh.NotTrackedError):
        ex.openlineage(plain, job="j", namespace="n")
    with pytest.raises(wh.NotTrackedError):
        ex.parquet(plain, tmp_path / "x")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("kwargs, match", [
    ({"job": "", "namespace": "n"}, "job must be a non-empty string"),
    ({"job": "   ", "namespace": "n"}, "job must be a non-empty string"),
    ({"job": None, "namespace": "n"}, "job must be a non-empty string"),
    ({"job": "j", "namespace": ""}, "namespace must be"),
    ({"job": "j", "namespace": "my namespace"}, "namespace must be"),
    ({"job": "j", "namespace": 3}, "namespace must be"),
    ({"job": "j", "namespace": "n", "run_id": "not-a-uuid"}, "run_id must be a UUID"),
    ({"job": "j", "namespace": "n", "producer": "whence"}, "producer must be an absolute URI"),
    ({"job": "j", "namespace": "n", "name": ""}, "name must be"),
])
def test_openlineage_bad_arguments(ab, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ex.openlineage(ab[3], **kwargs)


@pytest.mark.parametrize("kwargs, match", [
    ({"namespace": ""}, "namespace must be an absolute URI"),
    ({"namespace": "whence"}, "namespace must be an absolute URI"),
    ({"namespace": "urn:whence"}, "ending in"),
    ({"namespace": "urn:my whence:"}, "no spaces"),
    ({"run": "a b"}, "run must be"),
    ({"run": ""}, "run must be"),
])
def test_prov_json_bad_arguments(ab, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ex.prov_json(ab[3], **kwargs)


def test_parquet_into_an_existing_file(ab, tmp_path):
    f = tmp_path / "taken"
    f.write_text("not a directory")
    with pytest.raises(NotADirectoryError, match="is an existing file"):
        ex.parquet(ab[3], f)
    assert f.read_text() == "not a directory"


def test_reachable_as_wh_export():
    assert wh.export.prov_json is ex.prov_json
    assert wh.export.openlineage is ex.openlineage and wh.export.parquet is ex.parquet
