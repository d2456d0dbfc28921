"""From a table to regular series: reading, column checks, frequency, gaps and missing values.

A table (CSV, Parquet or a pandas DataFrame) has a time column, a numeric target column, an
optional id column (several series in one table) and optional covariate columns. `prepare` turns it
into a list of `Series`, each on a regular time grid:

    time    pandas Index (N,): DatetimeIndex, or integers (e.g. years) with an integer step
    y       (N,) float64 target, missing values filled by linear interpolation
    observed (N,) bool, False where y was missing (masked out of the loss and the metrics)
    past    (N, Fp) past-only covariates; future (N, Ff) known-future covariates (interpolated)

Every problem a user can fix raises ValueError with one line saying what and how; gaps and missing
values are repaired with a `warnings.warn` saying how many and where.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .._validate import no_file

# Seasonal periods of calendar frequencies (fixed steps use their steps per day and week).
SEASONS = {"W": [52], "M": [12], "Q": [4]}


@dataclass
class Series:
    """One regular series; see the module docstring for the fields."""

    key: str
    time: pd.Index
    y: np.ndarray
    observed: np.ndarray
    past: np.ndarray
    future: np.ndarray
    n_hist: int = -1  # rows [n_hist:] are future rows (no target); -1 = none

    def __post_init__(self) -> None:
        if self.n_hist < 0:
            self.n_hist = len(self.y)

    def __len__(self) -> int:
        return len(self.y)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file (by extension); an empty file is a ValueError."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(no_file(p, "pass an existing CSV or Parquet file"))
    if p.stat().st_size == 0:
        raise ValueError(f"{p} is empty; it needs a header row and at least one data row")
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            df = pd.read_parquet(p)
        else:
            df = pd.read_csv(p)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{p} is empty; it needs a header row and at least one data row") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise ValueError(f"{p} could not be parsed as a table: {str(e).splitlines()[0]}") from None
    if len(df) == 0:
        raise ValueError(f"{p} has a header but no data rows")
    return df


def check_columns(df: pd.DataFrame, **roles: str | list[str] | None) -> None:
    """Every named column must exist; the error lists the columns that do."""
    have = [str(c) for c in df.columns]
    for role, cols in roles.items():
        for c in [cols] if isinstance(cols, str) else cols or []:
            if c not in df.columns:
                raise ValueError(
                    f"no column {c!r} (the {role} column); the table has columns: {', '.join(have)}"
                )
    used: dict[str, str] = {}
    for role, cols in roles.items():
        for c in [cols] if isinstance(cols, str) else cols or []:
            if c in used and used[c] != role:
                raise ValueError(
                    f"column {c!r} is given as both the {used[c]} and the {role} column; "
                    "each role needs its own column"
                )
            used.setdefault(c, role)


def _numeric(col: pd.Series, name: str) -> np.ndarray:
    """Column as float64; a value that is not a number (and not empty) is an error."""
    if pd.api.types.is_bool_dtype(col) or not (
        pd.api.types.is_numeric_dtype(col)
        or col.dtype == object
        or pd.api.types.is_string_dtype(col)
    ):
        raise ValueError(f"column {name!r} must be numeric, got dtype {col.dtype}")
    num = pd.to_numeric(col, errors="coerce")
    bad = num.isna() & col.notna() & (col.astype(str).str.strip() != "")
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(
            f"column {name!r} must be numeric but row {i + 1} holds {col.iloc[i]!r}; "
            "fix or remove the non-numeric values"
        )
    out = num.to_numpy(np.float64)
    inf = np.isinf(out)
    if inf.any():
        i = int(np.flatnonzero(inf)[0])
        raise ValueError(
            f"column {name!r} holds an infinite value ({col.iloc[i]}) in row {i + 1} "
            f"({int(inf.sum())} in all); replace them with numbers or leave the cells empty "
            "(missing values are interpolated)"
        )
    return out


def parse_time(col: pd.Series, name: str) -> pd.Index:
    """Integers stay integers (e.g. years); anything else is parsed as dates.

    Errors name the first offending value and its data row (1-based, the header not counted; the
    row of the table when `col` keeps the table's default integer index, as in `prepare`).
    """
    if pd.api.types.is_integer_dtype(col):
        return pd.Index(col.to_numpy(np.int64))
    if pd.api.types.is_datetime64_any_dtype(col):
        return pd.DatetimeIndex(col)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = pd.to_datetime(col)
    except (ValueError, TypeError) as e:
        raise ValueError(_bad_time(col, name, e)) from None
    if t.isna().any():
        i = int(np.flatnonzero(t.isna().to_numpy())[0])
        raise ValueError(
            f"time column {name!r} is empty at data row {_row(col, i)} (1-based, header not "
            "counted); give every row a timestamp or remove that row"
        )
    return pd.DatetimeIndex(t)


def _row(col: pd.Series, i: int) -> int:
    """1-based data row of position i: the table's row for an integer index, else i + 1."""
    label = col.index[i]
    return int(label) + 1 if pd.api.types.is_integer_dtype(col.index) else i + 1


def _parses(value) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pd.notna(pd.to_datetime(value))
    except (ValueError, TypeError, OverflowError):
        return False


def _bad_time(col: pd.Series, name: str, error: Exception) -> str:
    """The message for a time column pandas could not parse: the first value that failed."""
    where = f"time column {name!r}"
    try:  # the same format inference as the failed call; the failures become NaT
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bad = pd.to_datetime(col, errors="coerce").isna().to_numpy() & col.notna().to_numpy()
    except (ValueError, TypeError):  # e.g. mixed time zones: no single value is at fault
        bad = np.zeros(len(col), bool)
    if not bad.any():
        first = str(error).splitlines()[0]
        return (
            f"{where} could not be read as dates ({first}); write every timestamp in one format "
            "and one time zone"
        )
    i = int(np.flatnonzero(bad)[0])
    value, row = col.iloc[i], _row(col, i)
    at = f"{where}: data row {row} (1-based, header not counted) holds {value!r}"
    if bad.mean() > 0.5:  # most values fail: probably the wrong column
        return (
            f"{at}, which is not a date or an integer, as are {int(bad.sum()) - 1} more of its "
            f"{len(col)} values; pass the column with the timestamps as --time"
        )
    if _parses(value):
        return (
            f"{at}, which is not in the format of the first timestamp {col.iloc[0]!r}; write "
            "every timestamp in that one format"
        )
    return f"{at}, which is not a date; correct or remove that row"


def infer_freq(time: pd.Index, name: str = "time") -> str | int:
    """A pandas frequency string ("30min", "h", "W-SUN", "MS", ...) or an integer step.

    Raises:
        ValueError: fewer than 3 timestamps, or no regular step (most steps differ).
    """
    if len(time) < 3:
        raise ValueError(f"column {name!r}: need at least 3 timestamps to infer the frequency")
    if not isinstance(time, pd.DatetimeIndex):
        steps = np.diff(np.asarray(time))
        vals, counts = np.unique(steps, return_counts=True)
        if counts.max() < 0.5 * len(steps) or vals[counts.argmax()] <= 0:
            raise ValueError(_unknown_freq(name, steps.min(), steps.max()))
        return int(vals[counts.argmax()])
    f = pd.infer_freq(time)
    if f is not None:
        return f
    ns = time.as_unit("ns").asi8
    days = np.diff(ns) / 86_400e9
    med = float(np.median(days))
    for lo, hi, start, end in ((28, 31, "MS", "ME"), (89, 92, "QS", "QE"), (365, 366, "YS", "YE")):
        if lo <= med <= hi:
            if time.is_month_start.all():
                return start
            if time.is_month_end.all():
                return end
    steps = pd.Series(np.diff(ns))
    share = steps.value_counts(normalize=True)
    if share.iloc[0] < 0.5:
        lo, hi = pd.Timedelta(int(steps.min())), pd.Timedelta(int(steps.max()))
        raise ValueError(_unknown_freq(name, lo, hi))
    step = pd.Timedelta(int(share.index[0]))
    if step == pd.Timedelta("7D"):
        return f"W-{time[0].day_name()[:3].upper()}"
    return "D" if step == pd.Timedelta("1D") else pd.tseries.frequencies.to_offset(step).freqstr


def _unknown_freq(name: str, lo, hi) -> str:
    return (
        f"cannot infer the frequency of {name!r}: steps range from {lo} to {hi} with no "
        "dominant one; resample to a regular grid or pass the frequency (--freq 30min, h, D, W, MS)"
    )


def check_freq(freq: str | int) -> str | int:
    """A frequency the user gave: an integer step or a pandas offset alias."""
    if isinstance(freq, int | np.integer) or (isinstance(freq, str) and freq.isdigit()):
        return int(freq)
    try:
        return pd.tseries.frequencies.to_offset(freq).freqstr
    except (ValueError, TypeError):
        raise ValueError(
            f"unknown frequency {freq!r}; use a pandas alias such as 30min, h, D, W, MS or an "
            "integer step"
        ) from None


def time_range(start, periods: int, freq: str | int) -> pd.Index:
    """`periods` timestamps from `start` (included) at `freq`."""
    if isinstance(freq, int):
        return pd.Index(int(start) + freq * np.arange(periods, dtype=np.int64))
    return pd.date_range(start, periods=periods, freq=freq)


def base_unit(freq: str | int) -> str | None:
    """The key of SEASONS for a frequency (None for integer steps)."""
    if isinstance(freq, int):
        return None
    name = pd.tseries.frequencies.to_offset(freq).name
    for unit in ("min", "h", "D", "W", "M", "Q"):
        if name.startswith(unit) or (unit == "M" and name in ("MS", "ME")):
            return unit
    return "Q" if name.startswith("Q") else None


def regularise(time: pd.Index, freq: str | int, key: str) -> tuple[pd.Index, np.ndarray, int]:
    """The full grid from the first to the last timestamp, where each row lands, and the number
    of grid points that were missing. Off-grid timestamps are snapped to the nearest point."""
    if isinstance(freq, int):
        pos = np.rint((np.asarray(time) - time[0]) / freq).astype(np.int64)
    else:
        grid0 = pd.date_range(time[0], time[-1], freq=freq)
        pos = grid0.get_indexer(time, method="nearest")
        if (grid0[pos] != time).any():
            warnings.warn(
                f"series {key}: {int((grid0[pos] != time).sum())} timestamps are off the {freq} "
                "grid; snapped to the nearest grid point",
                stacklevel=3,
            )
    n = int(pos.max()) + 1
    if len(np.unique(pos)) != len(pos):
        raise ValueError(
            f"series {key}: several timestamps fall on the same {freq} grid point; aggregate them "
            "first or pass the right frequency"
        )
    return time_range(time[0], n, freq), pos, n - len(time)
