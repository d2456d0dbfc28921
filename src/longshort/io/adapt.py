"""Every exportable longshort model seen as one shape: a RecurrentStack, plus affine scalings.

The exporters (torch, Keras, ONNX) only know `RecurrentStack`; this module says how each model is
one. The views share their Parameter objects with the model, so loading weights into a view loads
them into the model.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..nn import Module
from ..nn.recurrent import Recurrent

SUPPORTED = "LSTM, GRU, RNN, RecurrentStack, SequenceModel and SequenceClassifier (its net)"


class StackView(NamedTuple):
    """stack: the recurrent layers and head. scale_in: (shift, scale), floats or (I,) arrays,
    applied to the input as (x - shift) / scale, or None (the classifier's standardisation)."""

    stack: Module
    scale_in: tuple | None = None


def as_stack(model) -> StackView:
    """A StackView of `model`.

    Raises:
        TypeError: a model that is not a recurrent stack with an optional linear head (says why).
    """
    from ..models.stack import RecurrentStack

    if isinstance(model, RecurrentStack):
        return StackView(model)
    if isinstance(model, Recurrent):
        return StackView(RecurrentStack([model]))
    kind = type(model).__name__
    if kind == "SequenceModel":
        return StackView(RecurrentStack([model.rnn], model.head, model.config.readout))
    if kind == "ClassifierNet":
        if model.pooling != "last":
            raise TypeError(
                f"cannot export a classifier with pooling={model.pooling!r}: only pooling 'last' "
                "(the final state of each direction) has a RecurrentStack readout"
            )
        return StackView(RecurrentStack([model.rnn], model.head, "final"))
    if kind == "SequenceClassifier":
        if model.net is None:
            raise TypeError("cannot export an unfitted SequenceClassifier: call fit() first")
        net = as_stack(model.net).stack
        return StackView(net, (np.asarray(model.mean), np.asarray(model.std)))
    if kind == "Forecaster":
        raise TypeError(
            "cannot export a Forecaster: its head reads the LSTM's last state together with "
            "extra features (a highway), which is not a recurrent stack; export its LSTM alone "
            "with model.net.lstm"
        )
    raise TypeError(f"cannot export a {kind}: longshort.io exports {SUPPORTED}")


def reorder_gates(a: np.ndarray, order) -> np.ndarray:
    """Gate blocks of `a` along axis 0, rearranged: block p of the result is block order[p].

    a (G*H, ...) -> (G*H, ...). Each foreign format names its `order` once, in its own module.
    """
    parts = np.split(a, len(order), axis=0)
    return np.concatenate([parts[k] for k in order], axis=0)
