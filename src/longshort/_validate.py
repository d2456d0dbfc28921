"""Input checks shared by the layers: every error names the problem and the fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np

_FINITE = []  # [the compiled all_finite] once loaded, or [None] without Numba


def all_finite(a: np.ndarray) -> bool:
    """True when the float array `a` holds no NaN or inf: one compiled pass when `a` is
    C-contiguous float32/float64 and Numba is there (kernels/_finite.py), else NumPy's."""
    if not _FINITE:
        try:
            from .kernels._finite import all_finite as fn
        except ImportError:  # no Numba: NumPy below
            fn = None
        _FINITE.append(fn)
    fn = _FINITE[0]
    if (
        fn is not None
        and a.flags.c_contiguous
        and a.dtype.char in "fd"
        and a.dtype.isnative
        and a.size
    ):
        return bool(fn(a))
    return bool(np.isfinite(a).all())


def as_float_array(x, name: str, dtype, ndim: int | None = None) -> np.ndarray:
    """Convert to a float array of `dtype`, checking rank and finiteness."""
    try:
        a = np.asarray(x)
    except Exception as e:  # ragged lists and the like
        raise TypeError(f"{name} could not be converted to an array: {e}") from None
    if a.dtype == object or not (
        np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer) or a.dtype == bool
    ):
        raise TypeError(f"{name} must be a numeric array, got dtype {a.dtype}")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {a.shape}")
    a = np.ascontiguousarray(a, dtype=dtype)
    if not np.all(np.isfinite(a)):
        bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
        raise ValueError(
            f"{name} contains {bad} NaN or inf value(s); clean or impute the data first"
        )
    return a


def check_sequence_input(x, input_size: int, dtype, layer: str) -> np.ndarray:
    """x must be (B, T, I) with I == input_size, finite."""
    if (
        type(x) is np.ndarray
        and x.dtype == dtype
        and x.ndim == 3
        and x.shape[2] == input_size
        and x.shape[1] > 0
        and x.flags.c_contiguous
    ):  # the common case, kept cheap: a streaming layer call is mostly this overhead
        if all_finite(x):
            return x
        return as_float_array(x, "x", dtype)  # raises, counting the bad values
    a = np.asarray(x) if not isinstance(x, np.ndarray) else x
    if a.ndim != 3:
        raise ValueError(
            f"{layer} expects x of shape (batch, time, features) = (B, T, {input_size}), "
            f"got {a.ndim} dimension(s) with shape {a.shape}; "
            "add a batch axis with x[None] or a feature axis with x[..., None]"
        )
    if a.shape[2] != input_size:
        raise ValueError(
            f"x has {a.shape[2]} features but the {layer} was built with input_size={input_size}"
        )
    if a.shape[1] == 0:
        raise ValueError(f"{layer} got a sequence of length 0; x must have at least one step")
    return as_float_array(a, "x", dtype)


def check_lengths(lengths, batch: int, steps: int) -> np.ndarray | None:
    """lengths: None or integers in [0, T], one per sequence."""
    if lengths is None:
        return None
    lg = np.asarray(lengths)
    if lg.shape != (batch,):
        raise ValueError(f"lengths must have shape ({batch},), one per sequence; got {lg.shape}")
    if not np.issubdtype(lg.dtype, np.integer):
        if np.issubdtype(lg.dtype, np.floating) and np.all(lg == np.round(lg)):
            lg = lg.astype(np.int64)
        else:
            raise TypeError(f"lengths must be integers, got dtype {lg.dtype}")
    if lg.min(initial=0) < 0 or lg.max(initial=0) > steps:
        raise ValueError(
            f"lengths must lie in [0, T={steps}], got min {lg.min()} and max {lg.max()}"
        )
    return lg.astype(np.int64)


def check_state(s, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    if (
        type(s) is np.ndarray
        and s.dtype == dtype
        and s.shape == shape
        and s.flags.c_contiguous
        and all_finite(s)
    ):  # the common case (a state the layer returned), kept cheap
        return s
    a = as_float_array(s, name, dtype)
    if a.shape != shape:
        raise ValueError(
            f"{name} must have shape {shape} = (num_layers * num_directions, batch, hidden_size), "
            f"got {a.shape}"
        )
    return a


def no_file(p, hint: str = "") -> str:
    """The message for a path that is not a readable file: a directory, or nothing at all."""
    what = f"{p} is a directory, not a file" if Path(p).is_dir() else f"{p} not found"
    return what + (f"; {hint}" if hint else "")
