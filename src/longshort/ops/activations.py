"""Elementwise activations and their derivatives, written in terms of the outputs.

The recurrent backward passes keep post-activation values in their caches, so each derivative
takes the activation's output `y`, not its input:

    sigmoid(x) = 1 / (1 + exp(-x))        d/dx = y (1 - y)
    tanh(x)                               d/dx = 1 - y^2
    relu(x)    = max(x, 0)                d/dx = [y > 0]
"""

from __future__ import annotations

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, overflow-free: sigmoid(x) = (1 + tanh(x / 2)) / 2."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def sigmoid_backward(dy: np.ndarray, y: np.ndarray) -> np.ndarray:
    return dy * y * (1.0 - y)


def tanh(x: np.ndarray) -> np.ndarray:
    return np.tanh(x)


def tanh_backward(dy: np.ndarray, y: np.ndarray) -> np.ndarray:
    return dy * (1.0 - y * y)


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0)


def relu_backward(dy: np.ndarray, y: np.ndarray) -> np.ndarray:
    return dy * (y > 0)
