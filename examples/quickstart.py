"""The README's ten-line tour of the API (run: python examples/quickstart.py)."""

import numpy as np

import longshort as ls

lstm = ls.nn.LSTM(input_size=3, hidden_size=16, num_layers=2, bidirectional=True)
x = np.random.default_rng(0).standard_normal((4, 10, 3)).astype(np.float32)  # (B, T, I)
y, (h_n, c_n) = lstm(x, lengths=[10, 7, 3, 1])  # y (4, 10, 32); h_n, c_n (4, 4, 16)
dx, (dh0, dc0) = lstm.backward(np.ones_like(y))  # BPTT; gradients accumulate in p.grad
opt = ls.optim.Adam(lstm.parameters(), lr=1e-3)
opt.step()
lstm.zero_grad()
gates = lstm.gate_trace()[0]  # per-step i, f, g, o, c, h of layer 0, forward direction

print("y", y.shape, "h_n", h_n.shape, "dx", dx.shape)
print("mean forget gate of layer 0:", float(gates["f"].mean()))
