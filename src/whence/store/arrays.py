"""The index arrays of a run in the store: written inline (zstd) or to Parquet files, read back checked.

An array of at most ``inline_limit`` bytes is kept in the ``arrays`` table, zstd-compressed in ``data``; a
larger one goes to a Parquet file beside the database (``<path>.arrays/<run_uid>-<id>.parquet``).  Either way
its row holds its dtype, shape, size and the CRC-32 of its bytes, checked when it is read back, so a damaged
array is a :class:`~whence.errors.StoreCorruptError`, never a wrong answer.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from ..errors import StoreArrayMissingError, StoreCorruptError, StoreError, StoreStaleError
from .schema import pyarrow_module

__all__ = ["array_rows", "read_array"]


def array_rows(run, run_uid, arrays, array_dir, inline_limit, written_files):
    """The rows of the ``arrays`` table for ``arrays`` (``[(id, ndarray)]``) of one run.

    Arrays larger than ``inline_limit`` bytes are written to Parquet files in ``array_dir`` (created when
    needed); each file written is appended to ``written_files``, for the caller to remove should the save fail.
    """
    pa = pyarrow_module()
    rows = []
    for aid, a in arrays:
        a = a if a.flags.c_contiguous else a.copy(order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
        raw = a.tobytes()
        crc = zlib.crc32(raw)
        if len(raw) > inline_limit:
            pq = pyarrow_module('pyarrow.parquet')
            array_dir.mkdir(exist_ok=True)
            name = f"{run_uid}-{aid}.parquet"
            pq.write_table(pa.table({"v": a.reshape(-1)}), array_dir / name, compression="zstd")
            written_files.append(array_dir / name)
            rows.append((run, run_uid, aid, a.dtype.str, list(a.shape), len(raw), "parquet", crc, None, name))
        else:
            data = pa.compress(raw, codec="zstd", asbytes=True) if raw else b""
            rows.append((run, run_uid, aid, a.dtype.str, list(a.shape), len(raw), "zstd", crc, data, None))
    return rows


def read_array(con, path, run, run_uid, aid):
    """Index array ``aid`` of the run ``run`` (saved as ``run_uid``), read through ``con`` from the store at ``path``.

    Raises
    ------
    StoreStaleError
        The run was overwritten or deleted since it was opened.
    StoreArrayMissingError
        Its Parquet file is not beside the store.
    StoreCorruptError
        Its row is missing, or its bytes cannot be read or fail their checksum.
    """
    row = con.execute(
        "SELECT dtype, shape, nbytes, codec, crc32, data, path FROM arrays WHERE run_uid = ? AND id = ?",
        [run_uid, aid]).fetchone()
    if row is None:
        if con.execute("SELECT count(*) FROM runs WHERE run_uid = ?", [run_uid]).fetchone()[0]:
            raise StoreCorruptError(f"run {run!r} in {str(path)!r} is missing its index array {aid}: the "
                                    f"store is corrupted")
        raise StoreStaleError(f"run {run!r} in {str(path)!r} was overwritten or deleted since it was "
                              f"opened: open the store again")
    dtype, shape, nbytes, codec_name, crc, data, rel = row
    try:
        dt = np.dtype(dtype)
        if codec_name == "parquet":
            pq = pyarrow_module('pyarrow.parquet')
            f = Path(str(path) + ".arrays") / rel
            if not f.is_file():
                raise StoreArrayMissingError(
                    f"array file {str(f)!r} of run {run!r} is missing (it is kept beside the store; copy the "
                    f".arrays folder with the store file)")
            a = pq.read_table(f).column("v").to_numpy().astype(dt, copy=False)
        elif codec_name == "zstd":
            pa = pyarrow_module()
            raw = pa.decompress(data, decompressed_size=nbytes, codec="zstd", asbytes=True) if nbytes else b""
            a = np.frombuffer(raw, dt)
        else:
            raise ValueError(f"unknown codec {codec_name!r}")
        ok = zlib.crc32(np.ascontiguousarray(a).tobytes()) == crc
        if ok:
            a = a.reshape(shape)
    except StoreError:
        raise
    except Exception as e:  # noqa: BLE001 - whatever a damaged array makes pyarrow or numpy raise
        raise StoreCorruptError(f"array {aid} of run {run!r} in {str(path)!r} cannot be read: the store "
                                f"is corrupted ({type(e).__name__}: {e})") from e
    if not ok:
        raise StoreCorruptError(f"array {aid} of run {run!r} in {str(path)!r} fails its checksum: the "
                                f"store is corrupted")
    return a
