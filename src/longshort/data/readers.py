"""Labelled sequences from the files people have, checked, and padded for the classifier.

Symbols: N sequences, T_i the length of sequence i, T = max T_i, F features per step.

    read_sequences(path) -> (X, y)   X a list of N float arrays (T_i, F), y (N,) labels
        .ts   UCR/UEA time-series classification format (@-headers, then one case per line:
              dimensions separated by ':', values by ',', the class label last)
        .npz  X (N, T, F) or (N, T), y (N,), optional lengths (N,); read with allow_pickle=False
        .csv  long format with a header: id, time, feature columns..., label (one row per step;
              rows of an id are sorted by time; the label must be the same on all of them)
    pad_sequences(X, lengths) -> (x (N, T, F) float64 zero-padded, lengths (N,) int64)

Every problem is a ValueError that says which file, sequence (or line) is wrong and how: ragged
features, empty sequences, NaN or infinite values (or empty fields), missing labels, files that are
damaged or not text.
"""

from __future__ import annotations

import csv
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .._validate import no_file

FORMATS = ".ts (UCR/UEA), .npz (X, y[, lengths]) or .csv (long format: id,time,features...,label)"
NPZ_HOLDS = ("a valid .npz is a numpy.savez archive of arrays X (N, T) or (N, T, F), y (N,) and "
             "optionally lengths (N,)")  # fmt: skip


def pad_sequences(X, lengths=None) -> tuple[np.ndarray, np.ndarray]:
    """A list of (T_i, F) (or (T_i,)) arrays, or padded (N, T, F) with lengths -> padded + lengths.

    Steps at or after lengths[i] are ignored (set to zero), whatever they held.
    """
    if isinstance(X, np.ndarray) and X.dtype != object and X.ndim in (2, 3):
        x = np.asarray(X, np.float64)
        x = x[..., None] if x.ndim == 2 else x  # (N, T) -> (N, T, 1)
        N, T = x.shape[:2]
        lg = np.full(N, T, np.int64) if lengths is None else np.asarray(lengths)
        if lg.shape != (N,) or lg.dtype.kind not in "iu":
            raise ValueError(f"lengths must be {N} integers (one per sequence), got {lg.shape}")
        if N == 0:
            raise ValueError("no sequences were given")
        bad = np.flatnonzero((lg < 1) | (lg > T))
        if len(bad):
            raise ValueError(f"sequence {bad[0]} has length {lg[bad[0]]}: lengths must be in "
                             f"[1, {T}] (empty sequences cannot be classified)")  # fmt: skip
        valid = np.arange(T)[None, :] < lg[:, None]  # (N, T)
        x = np.where(valid[..., None], x, 0.0)
        bad = np.argwhere(~np.isfinite(x))  # padding is already zero
        if len(bad):
            raise ValueError(f"sequence {bad[0][0]} has a NaN or infinite value at step "
                             f"{bad[0][1]}, feature {bad[0][2]}; fill or drop missing values first")  # fmt: skip
        return x, lg.astype(np.int64)
    if lengths is not None:
        raise ValueError("lengths go with a padded (N, T, F) array; a list of arrays has its own")
    seqs = _as_list(X)
    N, F = len(seqs), seqs[0].shape[1]
    lg = np.array([len(s) for s in seqs], np.int64)
    x = np.zeros((N, int(lg.max()), F))  # (N, T, F)
    for i, s in enumerate(seqs):
        x[i, : len(s)] = s
    return x, lg


def _as_list(X) -> list[np.ndarray]:
    seqs = []
    for i, s in enumerate(X):
        try:
            a = np.asarray(s, np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"sequence {i} is not a numeric (T, F) array") from None
        a = a[:, None] if a.ndim == 1 else a  # (T,) -> (T, 1)
        if a.ndim != 2:
            raise ValueError(f"sequence {i} has shape {a.shape}; each must be (T_i, F)")
        if a.shape[0] == 0:
            raise ValueError(f"sequence {i} is empty (0 steps); every sequence needs >= 1 step")
        if seqs and a.shape[1] != seqs[0].shape[1]:
            raise ValueError(f"ragged features: sequence {i} has {a.shape[1]} features but "
                             f"sequence 0 has {seqs[0].shape[1]}")  # fmt: skip
        seqs.append(a)
    if not seqs:
        raise ValueError("no sequences were given")
    _check_finite(seqs)
    return seqs


def _check_finite(seqs) -> None:
    for i, s in enumerate(seqs):
        bad = np.argwhere(~np.isfinite(s))
        if len(bad):
            raise ValueError(f"sequence {i} has a NaN or infinite value at step {bad[0][0]}, "
                             f"feature {bad[0][1]}; fill or drop missing values first")  # fmt: skip


# --- files -------------------------------------------------------------------------------------
def read_sequences(path) -> tuple[list[np.ndarray], np.ndarray]:
    """Read labelled sequences from a .ts, .npz or .csv file (see the module docstring)."""
    p = Path(path)
    readers = {".ts": read_ts, ".npz": read_npz, ".csv": read_long_csv}
    if p.suffix.lower() not in readers:
        raise ValueError(
            f"unknown file format {p.suffix or '(no extension)'!r} for {p}: use {FORMATS}"
        )
    if not p.is_file():
        raise FileNotFoundError(no_file(p))
    X, y = readers[p.suffix.lower()](p)
    pad_sequences(X)  # the same checks the classifier makes, with file context
    if len(y) != len(X):
        raise ValueError(f"{p}: {len(X)} sequences but {len(y)} labels")
    return X, y


def read_npz(path) -> tuple[list[np.ndarray], np.ndarray]:
    """X (N, T[, F]), y (N,), optional lengths (N,); no pickled objects are ever loaded."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic != b"PK":  # every zip archive starts so; np.load would try pickle or raise EOFError
        what = "is empty" if not magic else "is not an .npz file (not a zip archive)"
        raise ValueError(f"{path} {what}; {NPZ_HOLDS}")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except ValueError as e:
        if "pickle" not in str(e):
            raise ValueError(f"{path} is damaged ({e}); {NPZ_HOLDS}") from None
        raise ValueError(f"{path}: cannot read without pickle ({e}); save plain arrays") from None
    except (EOFError, OSError, zipfile.BadZipFile, zlib.error) as e:
        raise ValueError(f"{path} is truncated or damaged ({e}); {NPZ_HOLDS}") from None
    for k in ("X", "y"):
        if k not in arrays:
            what = "labels are missing" if k == "y" else "the sequences are missing"
            raise ValueError(
                f"{path}: {what}: the file needs arrays 'X' and 'y' (has {sorted(arrays)})"
            )
    X = arrays["X"]
    if X.ndim not in (2, 3):
        raise ValueError(f"{path}: X must be (N, T) or (N, T, F), got shape {X.shape}")
    X = X[..., None] if X.ndim == 2 else X
    lg = arrays.get("lengths", np.full(len(X), X.shape[1]))
    x, lg = pad_sequences(X, lg)
    return [x[i, : lg[i]] for i in range(len(x))], arrays["y"]


def read_long_csv(path) -> tuple[list[np.ndarray], np.ndarray]:
    """Long format: header `id,time,<features...>,label`, one row per step of a sequence."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except UnicodeDecodeError as e:
        raise ValueError(
            f"{path} is not UTF-8 text (byte {e.start}: {e.object[e.start : e.start + 1]!r}); "
            "give a long-format .csv (id,time,features...,label) saved as UTF-8"
        ) from None
    if not any(c.strip() for r in rows for c in r):
        raise ValueError(f"{path} is empty: it needs a header id,time,<feature columns...>,label "
                         "and a row per step")  # fmt: skip
    if len(rows[0]) < 4 or [h.strip().lower() for h in rows[0][:2]] != ["id", "time"]:
        raise ValueError(f"{path}: the header must be id,time,<feature columns...>,label")
    if rows[0][-1].strip().lower() != "label":
        raise ValueError(f"{path}: labels are missing: the last column must be 'label'")
    width, seqs, labels = len(rows[0]), {}, {}
    for n, r in enumerate(rows[1:], start=2):
        if not r:
            continue
        if len(r) != width:
            raise ValueError(f"{path}, line {n}: {len(r)} fields, the header has {width}")
        sid, lab = r[0], r[-1].strip()
        empty = [j for j, v in enumerate(r[1:-1], start=1) if not v.strip()]
        if empty:
            raise ValueError(f"{path}, line {n}: missing value in column {rows[0][empty[0]]!r} "
                             f"(id {sid}); fill or drop missing values first")  # fmt: skip
        if lab == "":
            raise ValueError(f"{path}, line {n}: labels are missing (empty label for id {sid})")
        if labels.setdefault(sid, lab) != lab:
            raise ValueError(f"{path}, line {n}: id {sid} has labels {labels[sid]!r} and {lab!r}")
        try:
            seqs.setdefault(sid, []).append([float(v) for v in r[1:-1]])
        except ValueError:
            raise ValueError(f"{path}, line {n}: time and features must be numbers") from None
    if not seqs:
        raise ValueError(f"{path}: no data rows after the header")
    X = []
    for steps in seqs.values():
        a = np.asarray(steps)  # (T_i, 1 + F): time, features
        X.append(a[np.argsort(a[:, 0], kind="stable"), 1:])
    return X, _labels(list(labels.values()))


def _labels(values: list[str]) -> np.ndarray:
    """Integer labels when every label is an integer, else strings."""
    try:
        return np.array([int(v) for v in values])
    except ValueError:
        return np.array(values)


def read_ts(path) -> tuple[list[np.ndarray], np.ndarray]:
    """UCR/UEA .ts: `@` headers (@classLabel true ..., @data) then `dim0:dim1:...:label` lines."""
    X, y, has_label, in_data = [], [], None, False
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if not in_data:
                key, _, value = line.partition(" ")
                key = key.lower()
                if key == "@classlabel":
                    has_label = value.strip().lower().startswith("true")
                elif key == "@timestamps" and value.strip().lower() == "true":
                    raise ValueError(f"{path}: .ts files with timestamps are not supported")
                elif key == "@data":
                    in_data = True
                continue
            if not has_label:
                raise ValueError(f"{path}: labels are missing (@classLabel is not 'true')")
            *dims, label = line.split(":")
            X.append(_ts_case(path, n, dims))
            y.append(label.strip())
    if not in_data:
        raise ValueError(f"{path}: not a .ts file (no @data line)")
    if not X:
        raise ValueError(f"{path}: no cases after @data")
    return X, _labels(y)


def _ts_case(path, n: int, dims: list[str]) -> np.ndarray:
    """One case's dimensions -> (T, F); '?' (missing) becomes NaN and is rejected later."""
    if not dims:
        raise ValueError(f"{path}, line {n}: a case needs values before its label")
    try:
        cols = [[float("nan") if v.strip() == "?" else float(v) for v in d.split(",") if v.strip()]
                for d in dims]  # fmt: skip
    except ValueError:
        raise ValueError(f"{path}, line {n}: values must be numbers or '?'") from None
    if len({len(c) for c in cols}) != 1:
        raise ValueError(f"{path}, line {n}: the dimensions of a case have different lengths")
    return np.asarray(cols).T  # (T, F)
