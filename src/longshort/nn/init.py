"""Initialisation of recurrent layers.

- "uniform" (default, PyTorch's): every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H)).
- "orthogonal": as uniform, then each gate block of weight_hh (H, H) is a random orthogonal matrix
  (Saxe et al. 2014), which keeps the recurrent Jacobian's singular values near 1 at the start.
- forget_bias=b (LSTM): the forget gate's bias starts at b (b_ih = b, b_hh = 0), so f = sigmoid(b)
  and the cell remembers by default (Gers et al. 2000; Jozefowicz et al. 2015 use b = 1).
- chrono_t_max=T (LSTM): chrono initialisation (Tallec & Ollivier 2018): b_f = log(u),
  u ~ U(1, T - 1), and b_i = -b_f, so the cell's characteristic forgetting times spread over [1, T].
"""

from __future__ import annotations

import numpy as np


def orthogonal(rng: np.random.Generator, n: int, dtype) -> np.ndarray:
    """A random (n, n) orthogonal matrix, uniform over O(n) (QR with the sign fix)."""
    a = rng.standard_normal((n, n))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))[None, :]
    return q.astype(dtype)


def init_recurrent(layer, rng, init="uniform", forget_bias=None, chrono_t_max=None) -> None:
    """Fill a Recurrent layer's parameters in place (see the module docstring)."""
    if init not in ("uniform", "orthogonal"):
        raise ValueError(f"init must be 'uniform' or 'orthogonal', got {init!r}")
    H = layer.hidden_size
    bound = 1.0 / np.sqrt(H)
    for _, p in layer.named_parameters():
        p.data[...] = rng.uniform(-bound, bound, p.data.shape)
    is_lstm = layer.KIND == "lstm"
    if (forget_bias is not None or chrono_t_max is not None) and not is_lstm:
        raise ValueError("forget_bias and chrono_t_max apply to the LSTM only")
    if forget_bias is not None and chrono_t_max is not None:
        raise ValueError("choose either forget_bias or chrono_t_max, not both")
    for name, p in layer.named_parameters():
        if init == "orthogonal" and name.startswith("weight_hh"):
            for k in range(layer.GATES):
                p.data[k * H : (k + 1) * H] = orthogonal(rng, H, p.data.dtype)
        if not name.startswith("bias"):
            continue
        if forget_bias is not None:
            p.data[H : 2 * H] = forget_bias if name.startswith("bias_ih") else 0.0
        if chrono_t_max is not None:
            if chrono_t_max <= 2:
                raise ValueError(f"chrono_t_max must exceed 2, got {chrono_t_max}")
            if name.startswith("bias_ih"):
                bf = np.log(rng.uniform(1.0, chrono_t_max - 1.0, H))
                p.data[H : 2 * H] = bf
                p.data[:H] = -bf
            else:
                p.data[: 2 * H] = 0.0
