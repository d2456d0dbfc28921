"""Fused LSTM: the reference's math (ops/lstm.py) with the time loop in compiled code.

Symbols: B batch, T steps, I input features, H hidden units, G = 4H gate rows (i, f, g, o).
Same signatures, dtypes and cache as ops.lstm, so either backward accepts either forward's cache:
    lstm_forward(x (B,T,I), (h0, c0) (B,H), w, lengths, need_cache) -> y (B,T,H), (h_n, c_n), cache
    lstm_backward(dy (B,T,H), (dh_n, dc_n), cache, need_dx) -> dx (B,T,I) or None, (dh0, dc0), grads
    lstm_step(x_t (B,I), (h, c), w) -> ((h_t, c_t), gates (B,4H))

Forward, per step t (rows b of one batch chunk; chunks run on separate cores, each with
single-threaded BLAS, since batch rows are independent until the weight gradients; a batch of
one with T >= 16 and H % 64 == 0 instead splits its hidden units over two cores, _row2.py):
    z[:, t] = x_t W_ih^T            B > 1: per step with the tiles (_tiles.pack_t(W_ih) once
                                    per call); B = 1: one product for all steps before the loop
                                    (tiles for T >= 16, else BLAS on W_ih)
    z[:, t] += h_{t-1} W_hh^T       beta = 1; B > 1: tiles on pack_t(W_hh) (a chunk of one row:
                                    the row kernels); B = 1: the one-row layout
                                    (_tiles.pack_rows_t) for T >= 8, else BLAS gemv on W_hh
    a = act(z + (b_ih + b_hh))      in place: sigmoid on i, f, o; tanh on g
    c_t = f c_{t-1} + i g ;  h_t = o tanh(c_t)
Backward, per step t in reverse (dh, dc carried, (B, H)):
    dh_t = dh + dy_t ;  dc_t = dc + dh_t o (1 - tanh(c_t)^2)
    dz_o = dh_t tanh(c_t) o (1-o) ;  dz_i = dc_t g i (1-i) ;  dz_f = dc_t c_{t-1} f (1-f)
    dz_g = dc_t i (1 - g^2) ;  dh = dz W_hh ;  dc = dc_t f
    (dh: tiles on _tiles.pack(W_hh) for B > 1; B = 1: the one-row layout for T >= 8, else gemv;
    each row prefetches its previous step's cached gates and states while this one computes)
Then, per chunk (_lstm_loops.weight_grads): dx = dz W_ih (tiles); for large gradients (4H H >=
4 x 256 x 256, I and H multiples of 32) [dW_ih dW_hh] = dz^T [x h] as one product over gathered
panels; else dW_ih = dz^T x (tiles, in
place, when I is a multiple of 32 and the chunk has several rows; else x^T dz through the tiles
for I <= 256, or BLAS) and dW_hh = sum over rows of dz^T h (tiles, one product per row);
db = sum dz; the chunks' partial sums are then added up inside the compiled backward
(_lstm_loops.fold), so the gradients returned are views of the first chunk's buffers.
Rows past their length keep their state, output 0 and pass gradients through unchanged.

A batch on several cores makes ONE compiled call per forward and per backward
(_lstm_loops._forward_batch_par, _backward_batch_par): the weight panels, buffers and initial
states are set up inside it. After a kernel has swept the caches every NumPy or Numba call made
from Python costs 2-5x its warm time, and the dozen such calls around the two parallel regions
took ~10 % of a (32, 100, 32, 128) training step: forward + backward 6.3-7.0 -> 5.7-6.4 ms
(new/old 0.89-0.92, three processes, each alternating the two with torch.nn.LSTM).
"""

from __future__ import annotations

import contextlib
import math
import threading

import numba
import numba.np.ufunc.parallel as _numba_parallel
import numpy as np

from ..ops import lstm as ref
from ..ops.lstm import LSTMCache, LSTMWeights
from ..ops.sequence import step_mask
from . import _memory, _row2
from ._lstm_loops import (
    _backward_batch_par,
    _backward_one,
    _forward_batch_par,
    _forward_one,
    _step,
)
from ._memory import reusable_empty
from ._tiles import pack, pack_rows, pack_rows_t, pack_t

PARALLEL_MIN_WORK = 32 * 64  # B*H below which splitting the batch over cores does not pay

_PARALLEL = threading.Lock()  # one parallel region at a time (_threads.py picks the layer)


# --- Python entry points, same signatures as ops.lstm -------------------------------------------


def _num_threads() -> int:
    """numba.get_num_threads() (this thread's setting), without its two locks once Numba's
    threads are up: 0.14 us against 1.1 (7 us after a kernel has swept the caches)."""
    get = getattr(_numba_parallel, "_get_num_threads", None)  # set when Numba starts its threads
    return numba.get_num_threads() if get is None else get()


def _chunks(B: int, H: int) -> int:
    """How many cores share the batch: 1 for small work, else the thread count (max one row each)."""
    if B < 2 or B * H < PARALLEL_MIN_WORK:
        return 1
    return min(B, _num_threads())


@contextlib.contextmanager
def _cores(B: int, H: int):
    """Number of batch chunks to run on separate cores; > 1 only while this thread holds the
    parallel region (a second Python thread calling in meanwhile runs serially instead of
    crashing the workqueue layer, which is not thread-safe)."""
    n = _chunks(B, H)
    if n > 1 and _PARALLEL.acquire(blocking=False):
        try:
            yield n
        finally:
            _PARALLEL.release()
    else:
        yield 1


_NO_P = {"f": np.empty((0, 0, 32), np.float32), "d": np.empty((0, 0, 32), np.float64)}  # no panels
_NO_STATE = {"f": np.empty((0, 0), np.float32), "d": np.empty((0, 0), np.float64)}  # zeros
_NO_LENS = np.empty(0, np.int64)  # every row runs all T steps
_NO_Z = {"f": np.empty((0, 0, 0), np.float32), "d": np.empty((0, 0, 0), np.float64)}  # allocate


def _lens(mask, B: int, T: int) -> np.ndarray:
    """(B,) int64 valid lengths from the (B, T) prefix mask (None: all T)."""
    if mask is None:
        return np.full(B, T, np.int64)
    return mask.sum(axis=1).astype(np.int64)


def _c(a, dt):
    """a as a C-contiguous array of dtype dt, copying only when needed (the BLAS calls need it)."""
    if type(a) is np.ndarray and a.dtype == dt and a.flags.c_contiguous:
        return a
    return np.ascontiguousarray(a, dt)


def _contig(w: LSTMWeights, dt) -> LSTMWeights:
    for a in w:
        if type(a) is not np.ndarray or a.dtype != dt or not a.flags.c_contiguous:
            return LSTMWeights(*[_c(a, dt) for a in w])
    return w if type(w) is LSTMWeights else LSTMWeights(*w)


def _padded(G: int, dt) -> int:
    """Row length for the (B, T, G) gradient buffer dz: G plus one cache line. The weight
    gradients read dz^T, a step of G elements from row to row; when G * itemsize is a multiple
    of 4 KiB (G = 1024 or 2048, float32) those rows all fall in the same L1 set and evict each
    other. One line more moves them apart: one core's dW_hh at (64, 50, H = 512) 48 -> 42 ms,
    at (32, 200, 256) 23 -> 19 ms (medians of 21, interleaved; H = 384, whose 6 KiB is not a
    multiple of 4 KiB, unchanged). Whole training steps, padded and not alternating in one
    process: (128, 50, 128, 512) -7 % and -3 %, (64, 200, 64, 256, 2) -1 % and +3 %,
    (32, 100, 32, 128) level then; on 2026-12-03 padding G = 512 (2 KiB rows) cost
    (32, 100, 32, 128) 3-5 % (6.28 vs 6.10 ms, 6.47 vs 6.16, 5.77 vs 5.52) while
    (64, 200, 64, 256, 2) (4 KiB rows) gained 5 %: only multiples of 4 KiB are padded."""
    size = np.dtype(dt).itemsize
    return G + 64 // size if (G * size) % 4096 == 0 else G


def lstm_forward(x, state0, weights, lengths=None, need_cache=True):
    """Fused `ops.lstm.lstm_forward`; see that function for the contract.

    Kept lean: at B = T = 1 the Python around the compiled loop is most of the call's time.
    """
    if type(x) is not np.ndarray or not x.flags.c_contiguous:
        x = np.ascontiguousarray(x)
    dt = x.dtype
    B, T, I = x.shape
    if B == 0:  # an empty batch: nothing to compute, and the kernels index row 0
        return ref.lstm_forward(x, state0, weights, lengths, need_cache)
    w = _contig(weights, dt)
    if T == 1 and lengths is None and not need_cache:  # one step: the leaner streaming kernel
        h, c = state0
        hn, cn, _ = _step(x[:, 0], _c(h, dt), _c(c, dt), *w)
        return hn[:, None].copy(), (hn, cn), None  # y (B, 1, H) must not alias h_n
    H = w.w_hh.shape[1]
    mask = None if lengths is None else step_mask(lengths, B, T)
    h0, c0 = _c(state0[0], dt), _c(state0[1], dt)
    n = _chunks(B, H)
    if n > 1 and _PARALLEL.acquire(False):  # the batch on the cores, in one compiled call
        try:
            lens = _NO_LENS if mask is None else _lens(mask, B, T)
            G = 4 * H  # a cache's gates over 32 MiB come from the pool (_memory.py)
            big = need_cache and B * T * G * dt.itemsize > _memory.MMAP_THRESHOLD
            z = reusable_empty((B, T, G), dt) if big else _NO_Z[dt.char]
            y, hbuf, cbuf, tbuf, z = _forward_batch_par(
                x, h0, c0, w.w_ih, w.w_hh, w.b_ih, w.b_hh, lens, bool(need_cache), n, z
            )
        finally:
            _PARALLEL.release()
        S = hbuf.shape[1]
    elif _row2.usable(B, T, I, H) and _num_threads() > 1 and _PARALLEL.acquire(False):
        try:  # a batch of one on two cores, each with half of the hidden units (_row2.py)
            lens = np.full(1, T, np.int64) if mask is None else _lens(mask, B, T)
            y, hbuf, cbuf, tbuf, z = _row2.forward_pair(
                x, w.w_ih, w.w_hh, w.b_ih, w.b_hh, h0, c0, lens, bool(need_cache)
            )
        finally:
            _PARALLEL.release()
        S = hbuf.shape[1]
    else:
        S = T + 1 if need_cache else 2  # keep every state, or a ring of two
        hbuf, cbuf = np.empty((B, S, H), dt), np.empty((B, S, H), dt)
        hbuf[:, 0], cbuf[:, 0] = h0, c0
        tbuf = np.empty((B, T if need_cache else 1, H), dt)
        y = np.empty((B, T, H), dt)
        z = _forward_batch(x, w, hbuf, cbuf, tbuf, y, _lens(mask, B, T), need_cache)
    state = (hbuf[:, T % S].copy(), cbuf[:, T % S].copy())
    cache = LSTMCache(x, hbuf, cbuf, z, tbuf, mask, w) if need_cache else None
    return y, state, cache


def _forward_batch(x, w, hbuf, cbuf, tbuf, y, lens, need_cache):
    """The compiled forward on one core (small work, a batch of one, or another thread in the
    parallel region; a batch on several cores goes through _forward_batch_par); returns z, the
    gates (B, T, 4H) with a cache (else a scratch buffer)."""
    dt, (B, T, _), H = x.dtype, x.shape, w.w_hh.shape[1]
    fused = B > 1  # x_t W_ih^T computed step by step with the tiles, beside h_{t-1} W_hh^T
    # panels of W^T for the tiles (_tiles.pack_t: 9 us at (512, 128)); a short single row uses
    # BLAS on W itself
    wp_ih = pack_t(w.w_ih) if fused or T >= 16 else _NO_P[dt.char]  # (4H // 32, I, 32)
    if B > 1:
        wp_hh = pack_t(w.w_hh)  # (4H // 32, H, 32)
    else:  # a batch of one: the one-row layout, or gemv on W_hh for a few steps
        wp_hh = pack_rows_t(w.w_hh) if T >= 8 else _NO_P[dt.char]
    Tz = T if need_cache or not fused else 1  # without a cache only the current step's gates
    z = reusable_empty((B, Tz, 4 * H), dt)  # (B, Tz, 4H) pre-activations, then gates
    args = (x, w.w_ih, wp_ih, fused, w.b_ih + w.b_hh, w.w_hh, wp_hh, z, hbuf, cbuf, tbuf, y, lens)
    _forward_one(*args)
    return z


SCRATCH_MAX = 64 << 20  # bytes of dz a thread keeps between backward calls
_SCRATCH = threading.local()


def _scratch_dz(shape: tuple, dt) -> np.ndarray:
    """np.empty(shape, dt) for dz, reusing this thread's buffer from the last backward: dz is
    scratch (nothing returned views it), and a buffer written a moment ago is still in the
    cache and mapped, where a fresh one costs page faults and reads from memory before the
    first write (training steps, both alternating in one process: -1.5 % at (32,100,32,128),
    -3 % at (128,50,128,512)). Larger than SCRATCH_MAX: a fresh array, nothing kept."""
    n = math.prod(shape)
    if n * dt.itemsize > SCRATCH_MAX:
        return np.empty(shape, dt)
    pool = _SCRATCH.__dict__.setdefault("dz", {})
    buf = pool.get(dt.char)
    if buf is None or buf.size < n:
        buf = pool[dt.char] = np.empty(n, dt)
    return buf[:n].reshape(shape)


def lstm_backward(dy, dstate, cache, need_dx=True):
    """Fused `ops.lstm.lstm_backward`; accepts a cache from either forward. need_dx=False
    skips dx = dz W_ih and returns None for it."""
    if cache.x.shape[0] == 0 or cache.x.shape[1] == 0:  # an empty batch or no steps: nothing
        return ref.lstm_backward(dy, dstate, cache, need_dx)  # for the kernels to loop over
    x, hs, cs, gates, tcs, mask, w = cache
    x = _c(x, x.dtype)
    dt = x.dtype
    B, T, I = x.shape
    H = hs.shape[-1]
    w = _contig(w, dt)
    gates, hs, cs, tcs = (_c(a, dt) for a in (gates, hs, cs, tcs))
    has_dy = dy is not None
    dy = _c(dy, dt) if has_dy else np.empty((1, 1, 1), dt)
    dz = _scratch_dz((B, T, _padded(4 * H, dt)), dt)  # (B, T, >= 4H) grad. w.r.t. pre-act.
    n = _chunks(B, H)
    if n > 1 and _PARALLEL.acquire(False):  # the batch on the cores, in one compiled call
        try:
            dh0 = _NO_STATE[dt.char] if dstate[0] is None else _c(dstate[0], dt)
            dc0 = _NO_STATE[dt.char] if dstate[1] is None else _c(dstate[1], dt)
            lens = _NO_LENS if mask is None else _lens(mask, B, T)
            dx, dh, dc, dw_ih, dw_hh, db = _backward_batch_par(
                dy, has_dy, gates, hs, cs, tcs, w.w_hh, dh0, dc0, dz, x, w.w_ih, lens,
                bool(need_dx), n,
            )  # fmt: skip
        finally:
            _PARALLEL.release()
        return (dx if need_dx else None), (dh, dc), LSTMWeights(dw_ih, dw_hh, db, db.copy())
    dh = np.zeros((B, H), dt) if dstate[0] is None else np.array(dstate[0], dtype=dt)
    dc = np.zeros((B, H), dt) if dstate[1] is None else np.array(dstate[1], dtype=dt)
    dx = np.empty((B, T, I) if need_dx else (0, T, I), dt)  # (0, T, I): not computed
    if B > 1:
        wp_hh = pack(w.w_hh)  # (H // 32, 4H, 32) panels
    else:
        wp_hh = pack_rows(w.w_hh) if T >= 8 else _NO_P[dt.char]
    args = (dy, has_dy, gates, hs, cs, tcs, w.w_hh, wp_hh, _lens(mask, B, T), dh, dc, dz)
    args += (np.empty((B, H), dt), x, w.w_ih, dx)
    dw_ih = np.empty((1, 4 * H, I), dt)
    dw_hh, db = np.empty((1, 4 * H, H), dt), np.empty((1, 4 * H), dt)
    _backward_one(*args, dw_ih, dw_hh, db)
    dw_ih, dw_hh, db = dw_ih[0], dw_hh[0], db[0]
    return (dx if need_dx else None), (dh, dc), LSTMWeights(dw_ih, dw_hh, db, db.copy())


def lstm_step(x_t, state, weights):
    """Fused `ops.lstm.lstm_step`: x_t (B, I), (h, c) (B, H) -> ((h_t, c_t), gates (B, 4H))."""
    h, c = state
    if len(h) == 0:  # an empty batch (see lstm_forward)
        return ref.lstm_step(x_t, state, weights)
    dt = h.dtype
    args = (x_t, h, c, *weights)
    for a in args:  # as is when every array is already right (a streaming loop's case)
        if type(a) is not np.ndarray or a.dtype != dt or not a.flags.c_contiguous:
            args = tuple(_c(a, dt) for a in args)
            break
    hn, cn, z = _step(*args)
    return (hn, cn), z


# The compiled step itself, for callers that have already checked their arrays (nn.LSTM keeps
# its weights checked between calls): raw(x_t, h, c, w_ih, w_hh, b_ih, b_hh) -> (h_t, c_t, gates)
# with every array C-contiguous of one dtype.
lstm_step.raw = _step

forward, backward, step = lstm_forward, lstm_backward, lstm_step
