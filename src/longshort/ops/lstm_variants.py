"""LSTM variants (reference): peepholes, projection, layer norm, zoneout, recurrent dropout,
weight drop, cell clip and coupled input-forget gates, forward and hand-written BPTT.

Symbols (batch first): B batch, T steps, I inputs, H cell units, R = P (projection) or H, the
width of h. x (B, T, I); h (B, R); c (B, H); y (B, T, R).

Parameters (`LSTMExtWeights`; a variant is on when its arrays are given, None when off):
    w_ih (4H, I), w_hh (4H, R), b_ih, b_hh (4H,)   torch's layout, gate blocks i, f, g, o
    w_ph (3, H)   peepholes, rows [p_i, p_o, p_f]: ONNX's P order, so export is a reshape
    w_hr (P, H)   projection (LSTMP, Sak et al. 2014), torch's weight_hr_l{k}
    ln_ih, ln_hh (4H,)   layer-norm gains of the input and recurrent parts (haste's LayerNormLSTM)
    ln_c_w, ln_c_b (H,)  layer-norm gain and bias of the cell before tanh
Settings and masks (`LSTMExtOptions`, drawn by the layer so the op stays a pure function):
    input_forget, cell_clip, ln_eps; zoneout_c (B|1, T|1, H), zoneout_h (B|1, T|1, R): the
    probability of keeping the previous value per unit and step (0/1 draws in training, z at eval);
    recurrent_mask (B, R) one scaled keep-mask per sequence; weight_mask (4H, R) scaled.

Equations, for t = 0 .. T-1 (each term only when its option is on):
    W = W_hh * m_w                   weight drop (DropConnect, AWD-LSTM), once per forward
    a_x = x_t W_ih^T ; a_h = (h_{t-1} * m_r) W^T        recurrent (variational) dropout, (B, 4H)
    z = LN(a_x) gamma_x + LN(a_h) gamma_h + b_ih + b_hh     (else a_x + a_h + b)
    z_i += p_i c_{t-1} ; z_f += p_f c_{t-1}                 peepholes (Gers & Schmidhuber 2000)
    i = s(clip(z_i)) ; f = s(clip(z_f)) ; g = tanh(clip(z_g))   clip(v) = min(max(v, -k), k)
    i = 1 - f                                               coupled input-forget gate
    c~ = f c_{t-1} + i g ;  z_o += p_o c~ ;  o = s(clip(z_o))
    m = o tanh(LN(c~) gamma_c + beta_c)                     (else o tanh(c~))
    h~ = m W_hr^T                                           (B, P) (else m)
    c_t = d_c c_{t-1} + (1 - d_c) c~ ; h_t = d_h h_{t-1} + (1 - d_h) h~   zoneout; y_t = h_t
LN(v) = (v - mean(v)) / sqrt(var(v) + eps) over the last axis (4H for gates, H for the cell).
`cell_clip` follows the ONNX LSTM operator: the pre-activations of the gates are clipped to
[-k, k] (ONNX's `clip`), not the cell state. Lengths work as in ops/lstm.py.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .activations import sigmoid
from .sequence import step_mask


class LSTMExtWeights(NamedTuple):
    """Parameters (or their gradients) of one layer-direction; None marks a variant that is off."""

    w_ih: np.ndarray  # (4H, I)
    w_hh: np.ndarray  # (4H, R)
    b_ih: np.ndarray  # (4H,)
    b_hh: np.ndarray  # (4H,)
    w_ph: np.ndarray | None = None  # (3, H) [p_i, p_o, p_f]
    w_hr: np.ndarray | None = None  # (P, H)
    ln_ih: np.ndarray | None = None  # (4H,)
    ln_hh: np.ndarray | None = None  # (4H,)
    ln_c_w: np.ndarray | None = None  # (H,)
    ln_c_b: np.ndarray | None = None  # (H,)


class LSTMExtOptions(NamedTuple):
    """Settings that are not parameters, and the dropout-like masks of one forward pass."""

    input_forget: bool = False
    cell_clip: float | None = None
    ln_eps: float = 1e-5
    zoneout_c: np.ndarray | None = None  # (B|1, T|1, H) keep-previous probability or 0/1 draw
    zoneout_h: np.ndarray | None = None  # (B|1, T|1, R)
    recurrent_mask: np.ndarray | None = None  # (B, R), already scaled by 1 / (1 - p)
    weight_mask: np.ndarray | None = None  # (4H, R), already scaled by 1 / (1 - p)


class LSTMExtCache(NamedTuple):
    """What `lstm_ext_backward` needs (h, c, gates named as in LSTMCache for gate traces)."""

    x: np.ndarray  # (B, T, I)
    h: np.ndarray  # (B, T+1, R) carried h, h[:, 0] = h0
    c: np.ndarray  # (B, T+1, H) carried c
    gates: np.ndarray  # (B, T, 4H) activated i, f, g, o
    c_new: np.ndarray  # (B, T, H) c~ before zoneout
    tanh_c: np.ndarray  # (B, T, H) tanh of the (normalised) cell
    mask: np.ndarray | None  # (B, T) valid steps
    weights: LSTMExtWeights
    opts: LSTMExtOptions
    ln: tuple | None  # (n_x, rs_x, n_h, rs_h, n_c, rs_c): normalised values and 1/std
    clip_mask: np.ndarray | None  # (B, T, 4H) True where the pre-activation was inside [-k, k]


def layer_norm(a: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """n = (a - mean) / sqrt(var + eps) over the last axis; returns n and rs = 1 / sqrt(var + eps)."""
    d = a - a.mean(-1, keepdims=True)
    rs = 1.0 / np.sqrt((d * d).mean(-1, keepdims=True) + eps)  # (..., 1)
    return d * rs, rs


def layer_norm_backward(dn: np.ndarray, n: np.ndarray, rs: np.ndarray) -> np.ndarray:
    """da for n = layer_norm(a): rs (dn - mean(dn) - n mean(dn n))."""
    return rs * (dn - dn.mean(-1, keepdims=True) - n * (dn * n).mean(-1, keepdims=True))


def _at(a: np.ndarray, t: int) -> np.ndarray:
    """Step t of a (B|1, T|1, n) zoneout array; a length-1 time axis is shared by every step."""
    return a[:, t if a.shape[1] > 1 else 0]


def _clip(z, k, keep):
    """Clip z in place to [-k, k]; store where it was inside in `keep` (same shape, bool)."""
    keep[...] = np.abs(z) < k
    np.clip(z, -k, k, out=z)


def lstm_ext_forward(x, state0, w: LSTMExtWeights, opts=None, lengths=None,
                     need_cache=True):  # fmt: skip
    """Run the variant LSTM over x (see the module docstring for the equations).

    Args:
        x: (B, T, I). state0: (h0 (B, R), c0 (B, H)). w: LSTMExtWeights.
        opts: LSTMExtOptions (None: all defaults, no masks).
        lengths: optional (B,) ints in [0, T]. need_cache: keep what the backward needs.

    Returns:
        y (B, T, R), (h_n (B, R), c_n (B, H)), cache (None unless need_cache).
    """
    opts = LSTMExtOptions() if opts is None else opts
    B, T, _ = x.shape
    h, c = state0
    H, R = w.w_hh.shape[0] // 4, w.w_hh.shape[1]
    mask = step_mask(lengths, B, T)
    k, zc, zh, ph = opts.cell_clip, opts.zoneout_c, opts.zoneout_h, w.w_ph
    use_ln = w.ln_ih is not None
    w_hh = w.w_hh if opts.weight_mask is None else w.w_hh * opts.weight_mask  # (4H, R)
    ax = x @ w.w_ih.T  # (B, T, 4H)
    bias = w.b_ih + w.b_hh
    if use_ln:
        nx, rsx = layer_norm(ax, opts.ln_eps)  # (B, T, 4H), (B, T, 1)
        zx = nx * w.ln_ih + bias
        nh, rsh = np.empty_like(ax), np.empty_like(rsx)
        nc, rsc = np.empty((B, T, H), x.dtype), np.empty((B, T, 1), x.dtype)
    else:
        zx = ax + bias
    y = np.zeros((B, T, R), x.dtype)
    hs, cs = np.empty((B, T + 1, R), x.dtype), np.empty((B, T + 1, H), x.dtype)
    hs[:, 0], cs[:, 0] = h, c
    gates, cns, tcs = np.empty_like(ax), np.empty((B, T, H), x.dtype), np.empty((B, T, H), x.dtype)
    keep = None if k is None else np.empty(ax.shape, bool)
    for t in range(T):
        hin = h if opts.recurrent_mask is None else h * opts.recurrent_mask  # (B, R)
        ah = hin @ w_hh.T  # (B, 4H)
        if use_ln:
            nh[:, t], rsh[:, t] = layer_norm(ah, opts.ln_eps)
            z = zx[:, t] + nh[:, t] * w.ln_hh  # (B, 4H)
        else:
            z = zx[:, t] + ah
        if ph is not None:
            z[:, :H] += ph[0] * c
            z[:, H : 2 * H] += ph[2] * c
        if k is not None:
            _clip(z[:, : 3 * H], k, keep[:, t, : 3 * H])
        g4 = gates[:, t]
        g4[:, : 2 * H] = sigmoid(z[:, : 2 * H])
        g4[:, 2 * H : 3 * H] = np.tanh(z[:, 2 * H : 3 * H])
        if opts.input_forget:
            g4[:, :H] = 1.0 - g4[:, H : 2 * H]
        i, f, g = g4[:, :H], g4[:, H : 2 * H], g4[:, 2 * H : 3 * H]
        cn = f * c + i * g  # (B, H)
        zo = z[:, 3 * H :]
        if ph is not None:
            zo += ph[1] * cn
        if k is not None:
            _clip(zo, k, keep[:, t, 3 * H :])
        o = g4[:, 3 * H :] = sigmoid(zo)
        if use_ln:
            nc[:, t], rsc[:, t] = layer_norm(cn, opts.ln_eps)
            tc = np.tanh(nc[:, t] * w.ln_c_w + w.ln_c_b)
        else:
            tc = np.tanh(cn)
        hn = o * tc if w.w_hr is None else (o * tc) @ w.w_hr.T  # (B, R)
        if zc is not None:
            cn_z = _at(zc, t) * c + (1.0 - _at(zc, t)) * cn
        else:
            cn_z = cn
        if zh is not None:
            hn = _at(zh, t) * h + (1.0 - _at(zh, t)) * hn
        if mask is None:
            h, c = hn, cn_z
            y[:, t] = hn
        else:
            m = mask[:, t, None]  # (B, 1)
            h, c = np.where(m, hn, h), np.where(m, cn_z, c)
            y[:, t] = np.where(m, hn, 0.0)
        hs[:, t + 1], cs[:, t + 1], cns[:, t], tcs[:, t] = h, c, cn, tc
    if not need_cache:
        return y, (h, c), None
    ln = (nx, rsx, nh, rsh, nc, rsc) if use_ln else None
    cache = LSTMExtCache(x, hs, cs, gates, cns, tcs, mask, w, opts, ln, keep)
    return y, (h, c), cache


def lstm_ext_backward(dy, dstate, cache: LSTMExtCache):
    """Backpropagation through time for `lstm_ext_forward`: the forward's lines in reverse.

    Args:
        dy: (B, T, R) or None. dstate: (dh_n (B, R), dc_n (B, H)), entries may be None.

    Returns:
        dx (B, T, I), (dh0, dc0), and the gradients as LSTMExtWeights (None where a variant is off).
    """
    x, hs, cs, gates, cns, tcs, mask, w, opts, ln, keep = cache
    B, T, _ = x.shape
    H, R = w.w_hh.shape[0] // 4, w.w_hh.shape[1]
    dt, zc, zh, ph, rm = x.dtype, opts.zoneout_c, opts.zoneout_h, w.w_ph, opts.recurrent_mask
    w_hh = w.w_hh if opts.weight_mask is None else w.w_hh * opts.weight_mask
    dh = np.zeros((B, R), dt) if dstate[0] is None else np.array(dstate[0], dtype=dt)
    dc = np.zeros((B, H), dt) if dstate[1] is None else np.array(dstate[1], dtype=dt)
    dz_all = np.empty((B, T, 4 * H), dt)  # gradient w.r.t. z (the biases' and gains' input)
    dah_all = np.empty_like(dz_all) if ln is not None else dz_all
    dhp_all = np.empty((B, T, R), dt) if w.w_hr is not None else None  # w.r.t. h~
    dph = np.zeros((3, H), dt) if ph is not None else None
    dgc, dbc = np.zeros(H, dt), np.zeros(H, dt)
    for t in reversed(range(T)):
        m = None if mask is None else mask[:, t, None]  # (B, 1)
        dh_t = dh if dy is None else dh + dy[:, t]
        dc_t = dc
        if m is not None:  # a padded step's backward is zero; its state gradient passes on below
            dh_t, dc_t = np.where(m, dh_t, 0.0), np.where(m, dc_t, 0.0)
        # zoneout: h_t = d h_{t-1} + (1 - d) h~ (and the same for c)
        dhn = dh_t if zh is None else dh_t * (1.0 - _at(zh, t))
        dcn = dc_t if zc is None else dc_t * (1.0 - _at(zc, t))
        if dhp_all is not None:  # h~ = m W_hr^T
            dhp_all[:, t] = dhn
            dhn = dhn @ w.w_hr  # (B, H)
        g4, tc, c_prev, cn = gates[:, t], tcs[:, t], cs[:, t], cns[:, t]
        i, f, g, o = (g4[:, j * H : (j + 1) * H] for j in range(4))
        do = dhn * tc  # m = o tanh(n)
        dn = dhn * o * (1.0 - tc * tc)
        if ln is not None:  # n = LN(c~) gamma_c + beta_c
            nc, rsc = ln[4][:, t], ln[5][:, t]
            dgc += (dn * nc).sum(0)
            dbc += dn.sum(0)
            dcn = dcn + layer_norm_backward(dn * w.ln_c_w, nc, rsc)
        else:
            dcn = dcn + dn
        dz = np.empty_like(g4)  # (B, 4H)
        dz[:, 3 * H :] = do * o * (1.0 - o)
        if keep is not None:
            dz[:, 3 * H :] *= keep[:, t, 3 * H :]
        if ph is not None:  # z_o += p_o c~
            dcn = dcn + dz[:, 3 * H :] * ph[1]
            dph[1] += (dz[:, 3 * H :] * cn).sum(0)
        di, df, dg = dcn * g, dcn * c_prev, dcn * i  # c~ = f c_{t-1} + i g
        dc_prev = dcn * f
        if opts.input_forget:  # i = 1 - f
            df, di = df - di, 0.0 * di
        dz[:, :H] = di * i * (1.0 - i)
        dz[:, H : 2 * H] = df * f * (1.0 - f)
        dz[:, 2 * H : 3 * H] = dg * (1.0 - g * g)
        if keep is not None:
            dz[:, : 3 * H] *= keep[:, t, : 3 * H]
        if ph is not None:  # z_i += p_i c_{t-1} ; z_f += p_f c_{t-1}
            dc_prev += dz[:, :H] * ph[0] + dz[:, H : 2 * H] * ph[2]
            dph[0] += (dz[:, :H] * c_prev).sum(0)
            dph[2] += (dz[:, H : 2 * H] * c_prev).sum(0)
        dz_all[:, t] = dz
        dah = dz if ln is None else layer_norm_backward(dz * w.ln_hh, ln[2][:, t], ln[3][:, t])
        dah_all[:, t] = dah
        dh_prev = dah @ w_hh  # (B, R) w.r.t. h_in
        if rm is not None:
            dh_prev *= rm
        if zh is not None:
            dh_prev += dh_t * _at(zh, t)
        if zc is not None:
            dc_prev += dc_t * _at(zc, t)
        if m is None:
            dh, dc = dh_prev, dc_prev
        else:
            dh, dc = np.where(m, dh_prev, dh), np.where(m, dc_prev, dc)
    return dx_and_grads(x, hs, cs, gates, tcs, w, w_hh, opts, ln, dz_all, dah_all, dhp_all,
                        dph, dgc, dbc, (dh, dc))  # fmt: skip


def dx_and_grads(x, hs, cs, gates, tcs, w, w_hh, opts, ln, dz_all, dah_all, dhp_all, dph, dgc,
                 dbc, dstate0):  # fmt: skip
    """The GEMMs after the backward loop: dx and every parameter gradient."""
    B, T, I = x.shape
    H, R = w_hh.shape[0] // 4, w_hh.shape[1]
    dz2 = dz_all.reshape(B * T, 4 * H)  # (B*T, 4H)
    g_ln = [None] * 4
    if ln is not None:
        nx, rsx, nh = ln[0], ln[1], ln[2]
        g_ln = [
            (dz2 * nx.reshape(B * T, nx.shape[-1])).sum(0),
            (dz2 * nh.reshape(B * T, nh.shape[-1])).sum(0),
            dgc,
            dbc,
        ]
        dax = layer_norm_backward(dz_all * w.ln_ih, nx, rsx)  # (B, T, 4H)
    else:
        dax = dz_all
    dx = dax @ w.w_ih  # (B, T, I)
    dw_ih = dax.reshape(B * T, 4 * H).T @ x.reshape(B * T, I)  # (4H, I)
    hin = hs[:, :-1] if opts.recurrent_mask is None else hs[:, :-1] * opts.recurrent_mask[:, None]
    dw_hh = dah_all.reshape(B * T, 4 * H).T @ hin.reshape(B * T, R)  # (4H, R)
    if opts.weight_mask is not None:
        dw_hh *= opts.weight_mask
    db = dz2.sum(0)  # (4H,)
    dw_hr = None
    if dhp_all is not None:
        mv = gates[..., 3 * H :] * tcs  # (B, T, H) o tanh(n)
        dw_hr = dhp_all.reshape(B * T, dhp_all.shape[-1]).T @ mv.reshape(B * T, H)  # (P, H)
    grads = LSTMExtWeights(dw_ih, dw_hh, db, db.copy(), dph, dw_hr, *g_ln)
    return dx, dstate0, grads


def lstm_ext_step(x_t, state, w: LSTMExtWeights, opts=None):
    """One streaming step (evaluation masks only): x_t (B, I), (h (B, R), c (B, H)).

    Returns:
        ((h_t, c_t), gates (B, 4H)).
    """
    _, st, cache = lstm_ext_forward(x_t[:, None], state, w, opts)
    return st, cache.gates[:, 0]
