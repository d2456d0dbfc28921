"""`prepare`: a table -> regular `Series` (see longshort.forecast.frame for the pieces).

Rows after the last known target value of a series are kept as its *future rows* (target missing,
covariates given): `predict` reads the known-future covariates of the horizon from them.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .frame import Series, check_columns, check_freq, infer_freq, parse_time, regularise
from .frame import _numeric as numeric


def _fill(a: np.ndarray) -> np.ndarray:
    """Linear interpolation over NaNs inside, nearest value at the ends; (N,) or (N, F)."""
    if a.size == 0:
        return a
    return pd.DataFrame(a).interpolate(limit_direction="both").to_numpy(np.float64)


def _groups(df: pd.DataFrame, id_col: str | None) -> list[tuple[str, pd.DataFrame]]:
    if id_col is None:
        return [("series", df)]
    if df[id_col].isna().any():
        raise ValueError(f"id column {id_col!r} has empty values; give every row a series id")
    return [(str(k), g) for k, g in df.groupby(id_col, sort=True)]


def _sorted_unique(t: pd.Index, key: str, time_col: str) -> np.ndarray:
    """Row order by time; duplicated timestamps are an error naming one."""
    order = np.argsort(np.asarray(t), kind="stable")
    ts = t[order]
    dup = ts.duplicated()
    if dup.any():
        where = "" if key == "series" else f" in series {key}"
        raise ValueError(
            f"duplicated timestamp {ts[dup][0]} in column {time_col!r}{where} "
            f"({int(dup.sum())} duplicates); aggregate them, or pass --id if the table holds "
            "several series"
        )
    return order


def prepare(df: pd.DataFrame, time: str, target: str, id: str | None = None,
            past: list[str] | tuple = (), future: list[str] | tuple = (),
            freq: str | int | None = None) -> tuple[list[Series], str | int]:  # fmt: skip
    """Validate and regularise a table; returns (series, frequency).

    Raises:
        ValueError: empty table, missing column (lists those present), non-numeric target or
            covariate, duplicated timestamps, an all-missing series, unknown frequency.
    """
    past, future = list(past or []), list(future or [])
    if len(df) == 0:
        raise ValueError("the table has no rows")
    check_columns(df, time=time, target=target, id=id, covariate=past + future)
    df = df.reset_index(drop=True)  # row labels = data rows (0-based) for the error messages
    df = df.assign(**{target: numeric(df[target], target)})
    for c in past + future:
        df[c] = numeric(df[c], c)
    freq = None if freq is None else check_freq(freq)
    out, notes = [], []
    for key, g in _groups(df, id):
        t = parse_time(g[time], time)
        order = _sorted_unique(t, key, time)
        g, t = g.iloc[order], t[order]
        y = g[target].to_numpy(np.float64)
        known = np.flatnonzero(~np.isnan(y))
        if len(known) == 0:
            where = "" if key == "series" else f" for series {key}"
            raise ValueError(
                f"target {target!r} has no values{where} (all missing); drop it or fix the column"
            )
        g, t = g.iloc[known[0] :], t[known[0] :]
        if freq is None:
            freq = infer_freq(t, time)
        out.append(_one_series(key, g, t, target, past, future, freq, notes))
    if notes:
        total = sum(n for n, _, _ in notes)
        gaps = sum(n for _, n, _ in notes)
        first = ", ".join(str(w) for _, _, ws in notes for w in ws)[:120]
        warnings.warn(
            f"target {target!r}: {total} missing values in {len(notes)} series ({gaps} of them "
            f"missing timestamps), first at {first}; filled by linear interpolation for the "
            "inputs and left out of the loss and the metrics",
            stacklevel=2,
        )
    return out, freq


def _one_series(key, g, t, target, past, future, freq, notes) -> Series:
    """Put one sorted group on its regular grid and fill its gaps (recorded in `notes`)."""
    grid, pos, inserted = regularise(t, freq, key)
    n = len(grid)

    def place(cols: list[str]) -> np.ndarray:
        a = np.full((n, len(cols)), np.nan)
        if cols:
            a[pos] = g[cols].to_numpy(np.float64)
        return a

    y = place([target])[:, 0]
    n_hist = int(np.flatnonzero(~np.isnan(y))[-1]) + 1
    observed = ~np.isnan(y)
    observed[n_hist:] = False
    missing = np.flatnonzero(~observed[:n_hist])
    if len(missing):
        notes.append((len(missing), inserted, [grid[i] for i in missing[:3]]))
    y[:n_hist] = _fill(y[:n_hist, None])[:, 0]
    covs = place(past + future)
    for j, c in enumerate(past + future):
        if np.isnan(covs[:n_hist, j]).all() and n_hist > 0:
            raise ValueError(f"covariate {c!r} has no values in series {key}; drop it or fill it")
    covs = _fill(covs)
    return Series(key, grid, y, observed, covs[:, : len(past)], covs[:, len(past) :], n_hist)
