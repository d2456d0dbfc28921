"""Load a torch.nn.LSTM's weights into longshort and check both give the same outputs.

Needs torch (the test extras): python examples/from_torch.py
"""

import numpy as np
import torch

import longshort as ls

torch.manual_seed(0)
ref = torch.nn.LSTM(5, 8, num_layers=2, batch_first=True, dtype=torch.float64)
ours = ls.nn.LSTM(5, 8, num_layers=2, dtype=np.float64)
ours.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})  # by name, no reordering

x = np.random.default_rng(0).standard_normal((3, 20, 5))
y, (h, c) = ours(x)
y_ref, (h_ref, c_ref) = ref(torch.from_numpy(x))
print("max |y - y_torch| =", float(np.abs(y - y_ref.detach().numpy()).max()))
