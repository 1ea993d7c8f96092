"""Benchmark: the corpus of public pandas / scikit-learn pipelines (``tests/corpus/``) under whence.

For every pipeline (see ``docs/corpus.md`` for the sources and licences):

* **overhead**: plain = ``pandas.read_csv`` of its tables + the pipeline; tracked = ``whence.reset()``,
  ``whence.read_csv`` of the same files + the same pipeline; alternating, median of >= 5 rounds
  (:func:`common.alternate`), ratio tracked / plain.  Warnings are silenced in both;
* **oracle**: :func:`corpus.harness.check` (the perturbation oracle of ``tests/test_corpus.py``): output rows
  checked, rows whose answers are FULL and pass (exact), rows answered PARTIAL (supersets that pass), the
  checks that fail today, and the operations that went PARTIAL (from the run's ``PartialLineageWarning``
  messages).

``python benchmarks/bench_corpus.py [--quick]`` prints the table; ``benchmarks/run.py --only corpus`` writes
``results/corpus.json`` and adds the table to ``results/summary.md``.  The target (issue 15): tracked / plain
<= 1.2x for every pipeline.
"""

from __future__ import annotations

import re
import sys
import tempfile
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from common import alternate  # noqa: E402

import whence as wh  # noqa: E402

TARGET = 1.2


def _partial_ops(messages):
    ops = set()
    for m in messages:
        hit = re.search(r"whence: (.+?) is not covered", m)
        if hit:
            ops.add(hit.group(1).split(" (")[0])
        elif "lost its lineage" in m:
            ops.add("lineage lost in an uncovered pandas path")
        elif "PartialLineageWarning" in m:
            ops.add(m.split(": ", 2)[-1][:60])
    return sorted(ops)


def run(quick=False, log=print):
    from corpus import PIPELINES, harness

    rows, problems = [], []
    for name in PIPELINES:
        mod = harness.load(name)
        with tempfile.TemporaryDirectory() as tmp:
            data = harness.Data(mod, tmp)

            def plain():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    mod.run(data.read_plain())

            def tracked():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    wh.reset()
                    mod.run(data.read_tracked())

            row = {"pipeline": name, "operations": list(mod.OPERATIONS), "source_bytes": data.nbytes()}
            try:
                t = alternate({"plain": plain, "tracked": tracked}, reps=5 if quick else 7,
                              min_batch=0.02 if quick else 0.05, budget=2 if quick else 15)
                row.update(plain_s=t["median_s"]["plain"], tracked_s=t["median_s"]["tracked"],
                           ratio=t["ratio"]["tracked"], reps=t["reps"])
            except Exception as e:  # noqa: BLE001  (a pipeline that does not run under whence)
                row.update(ratio=None, error=f"{type(e).__name__}: {str(e)[:160]}")
            wh.reset()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                oc = harness.check(name)
            row.update(rows_checked=oc.rows_checked, rows_exact=oc.rows_exact, rows_partial=oc.rows_partial,
                       rows_unconfirmed=oc.rows_unconfirmed, probes=oc.probes, oracle_runs=oc.runs,
                       failing_checks=[k for k, v in oc.failures.items() if v],
                       partial_ops=_partial_ops(oc.partial_warnings), oracle_s=oc.seconds)
        ratio = row.get("ratio")
        log(f"  {name:24s} tracked/plain {ratio if ratio is None else round(ratio, 2)}  "
            f"exact {row['rows_exact']}/{row['rows_checked']}  failing {row['failing_checks']}")
        if ratio is not None and ratio > TARGET:
            problems.append(f"corpus {name}: tracked/plain {ratio:.2f}x > {TARGET}x")
        rows.append(row)
    return {"name": "corpus", "pipelines": rows, "target_ratio": TARGET, "problems": problems}


def markdown(res):
    out = ["| pipeline | ops | tracked/plain | exact rows / checked | PARTIAL rows | failing checks | "
           "PARTIAL operations |", "|---|---|---|---|---|---|---|"]
    for r in res.get("pipelines", []):
        ratio = "does not run" if r.get("ratio") is None else f"{r['ratio']:.2f}x"
        out.append(f"| {r['pipeline']} | {len(r['operations'])} | {ratio} | {r['rows_exact']} / "
                   f"{r['rows_checked']} | {r['rows_partial']} | {', '.join(r['failing_checks']) or 'none'} | "
                   f"{'; '.join(r['partial_ops']) or 'none'} |")
    return "\n".join(out)


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    print(markdown(run(quick=quick)))
