"""The fast path: compiled (Numba) recurrent kernels with the same signatures as `ops/`.

Layers pick their ops with `impl`:
    "reference"  the NumPy oracle in ops/ (clear, slow; always available)
    "fused"      the compiled kernels here; an error when Numba is missing or the kernel does not
                 exist for that cell
    "auto"       "fused" when available, else "reference", saying so once in the log

    forward, backward, step = get_ops("lstm", impl)

Kernels are compiled on first use and cached on disk (`cache=True`), so later processes load them
in well under a second. See kernels/lstm.py for the equations and kernels/_blas.py for how the
compiled loops call NumPy's own BLAS.
"""

from __future__ import annotations

import functools
import importlib
import logging

log = logging.getLogger(__name__)

IMPLS = ("auto", "reference", "fused")
KINDS = ("lstm", "gru", "rnn")
__all__ = ["IMPLS", "KINDS", "fused_available", "get_lstm_ops", "get_lstm_variant_ops", "get_ops"]


@functools.cache
def _load_fused(kind: str):
    """(module, None) or (None, reason) for the fused kernels of one cell kind."""
    try:
        import numba  # noqa: F401
    except ImportError as e:
        return None, f"Numba is not installed ({e}); install it with `pip install numba`"
    try:
        return importlib.import_module(f".{kind}", __name__), None
    except ModuleNotFoundError as e:
        if e.name == f"{__name__}.{kind}":
            return None, f"there is no fused {kind.upper()} kernel yet"
        raise


@functools.cache
def _load_reference(kind: str):
    return importlib.import_module(f"..ops.{kind}", __name__)


@functools.cache
def _warn_fallback(kind: str, reason: str) -> None:
    log.info("impl='auto': using the reference %s ops because %s", kind.upper(), reason)


def fused_available(kind: str = "lstm") -> bool:
    """True when the fused kernels for `kind` can be used in this process."""
    return _load_fused(kind)[0] is not None


@functools.cache
def get_ops(kind: str, impl: str = "auto"):
    """(forward, backward, step) for `kind` in KINDS and `impl` in IMPLS.

    Raises:
        ValueError: unknown kind or impl.
        RuntimeError: impl="fused" but the fused kernels are not available (the message says why).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    if impl != "reference":
        mod, reason = _load_fused(kind)
        if mod is not None:
            return mod.forward, mod.backward, mod.step
        if impl == "fused":
            raise RuntimeError(
                f"impl='fused' was requested but {reason}; use impl='auto' to fall back to the "
                "reference NumPy ops"
            )
        _warn_fallback(kind, reason)
    ref = _load_reference(kind)
    return (
        getattr(ref, f"{kind}_forward"),
        getattr(ref, f"{kind}_backward"),
        getattr(ref, f"{kind}_step", None),
    )


def get_lstm_ops(impl: str = "auto"):
    """(lstm_forward, lstm_backward, lstm_step) for `impl`; see `get_ops`."""
    return get_ops("lstm", impl)


@functools.cache
def get_lstm_variant_ops(features: frozenset, impl: str = "auto"):
    """(forward, backward, step) for an LSTM with the variant options `features` on.

    The signatures are ops/lstm_variants.py's. kernels/lstm_variants.py covers the options in its
    FUSED_FEATURES (no projection or layer norm); kernels/lstm_variants_full.py covers every
    option. For any other combination "auto" falls back to the reference (saying so once in the
    log) and "fused" raises RuntimeError naming what is missing.
    """
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    if impl != "reference":
        for name in ("lstm_variants", "lstm_variants_full"):  # the lighter kernel first
            mod, reason = _load_fused(name)
            if mod is not None and features <= mod.FUSED_FEATURES:
                return mod.forward, mod.backward, mod.step
        if mod is not None:
            missing = ", ".join(sorted(features - mod.FUSED_FEATURES))
            reason = f"there is no fused kernel for the LSTM variant options: {missing}"
        if impl == "fused":
            raise RuntimeError(
                f"impl='fused' was requested but {reason}; use impl='auto' to fall back to the "
                "reference NumPy ops"
            )
        _warn_fallback("lstm variant", reason)
    ref = _load_reference("lstm_variants")
    return ref.lstm_ext_forward, ref.lstm_ext_backward, ref.lstm_ext_step
