"""A short walk through whence's lineage queries on a small image-like pipeline (``make demo``).

Run with ``python -m whence.demo``.  Everything printed is computed live.
"""

from __future__ import annotations

import warnings

import numpy as np

import whence as wh


def _show(title, value):
    print(f"  {title:<46} {value}")


def main():
    wh.reset()
    rng = np.random.default_rng(7)
    print("whence demo: where did this value come from?\n")

    # two sources: a 6x8 "sensor image" and per-column calibration gains
    image = wh.track(rng.normal(100, 15, size=(6, 8)).round(1), name="image")
    gains = wh.track(rng.uniform(0.9, 1.1, size=8).round(3), name="gains")
    print("sources: image (6x8 readings), gains (8 per-column calibration factors)\n")

    calibrated = image * gains                       # elementwise with broadcasting
    smooth = (calibrated[:, :-1] + calibrated[:, 1:]) / 2   # a moving average via slicing
    bright = smooth > 100                            # comparisons keep lineage
    picked = np.where(bright, smooth, 0.0)           # a data-dependent copy
    ranked = np.sort(picked, axis=1)[:, ::-1]        # sort each row, descending
    score = ranked[:, :3].mean(axis=1)               # mean of the three brightest per row

    print("pipeline: calibrate -> smooth -> threshold -> where -> sort rows -> top-3 mean per row")
    print(f"score = {np.round(np.asarray(score), 2)}\n")

    row = int(np.argmax(np.asarray(score)))
    print(f"Backward: which source cells made score[{row}]?")
    r = wh.backward(score, (row,))
    _show("image cells:", r["image"].tolist())
    _show("gains cells:", r["gains"].tolist())
    _show("complete:", r.completeness)
    rc = wh.backward(score, (row,), control=True)
    _show("with control cells (the where-condition too):", f"{len(rc['image'])} image cells")

    print("\nThe DSLog-style view of one cell of the sorted array:")
    cell = ranked.cell(row, 0)
    _show(f"ranked[{row}, 0] = {cell.value:.2f} came from", cell.parents)

    col = int(r["image"][0][1])
    print(f"\nForward: what did image[{row}, {col}] touch?")
    _show("cells of smooth:", wh.forward(image, (row, col), smooth).tolist())
    _show("cells of score:", wh.forward(image, (row, col), score).tolist())

    print("\nIn-place writes replace lineage: zero a bad reading, then recompute")
    image[2, 3] = 0.0
    again = (image * gains).sum(axis=1)
    _show("sources of row 2 sum now:", {k: len(v) for k, v in wh.backward(again, (2,)).items()})
    _show("image[2, 3] still in it?", bool((wh.backward(again, (2,))["image"] == [2, 3]).all(1).any()))

    print("\nThe graph:")
    _show("sources(score):", wh.sources(score))
    _show("ops(score):", wh.ops(score))
    _show("ancestors(score, depth=2):", [r.op for r in wh.ancestors(score, depth=2)])
    rel = wh.lineage(score)
    _show("lineage held for the whole relation:", f"{rel.nbytes} bytes for {len(rel.records)} ops")

    print("\nAn opaque step is flagged, never silently wrong:")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spectrum = np.abs(np.fft.rfft(image, axis=1))
    _show("warning:", str(caught[0].message)[:88] + "...")
    _show("backward(spectrum, (0, 0)).completeness:", wh.backward(spectrum, (0, 0)).completeness)
    print()
    print(repr(score))


if __name__ == "__main__":
    main()
