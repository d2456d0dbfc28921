"""Every exportable longshort model seen as one shape: a RecurrentStack, plus affine scalings.

The exporters (torch, Keras, ONNX) only know `RecurrentStack`; this module says how each model is
one. The views share their Parameter objects with the model, so loading weights into a view loads
them into the model.
"""

from __future__ import annotations

from typing import NamedTuple

from ..nn import Module
from ..nn.recurrent import Recurrent

SUPPORTED = "LSTM, GRU, RNN, RecurrentStack, SequenceModel and Forecaster"


class StackView(NamedTuple):
    """stack: the recurrent layers and head. scale_in: (shift, scale) applied to the input as
    (x - shift) / scale, or None. scale_out: (scale, shift) applied to the output as
    out * scale + shift, or None (the forecaster's standardisation)."""

    stack: Module
    scale_in: tuple[float, float] | None = None
    scale_out: tuple[float, float] | None = None


def as_stack(model: Module) -> StackView:
    """A StackView of `model`.

    Raises:
        TypeError: a model that is not a recurrent stack with an optional linear head.
    """
    from ..models.stack import RecurrentStack

    if isinstance(model, RecurrentStack):
        return StackView(model)
    if isinstance(model, Recurrent):
        return StackView(RecurrentStack([model]))
    kind = type(model).__name__
    if kind == "SequenceModel":
        return StackView(RecurrentStack([model.rnn], model.head, model.config.readout))
    if kind == "Forecaster":
        mean, std = float(model.mean), float(model.std)
        return StackView(RecurrentStack([model.lstm], model.head, "last"), (mean, std), (std, mean))
    raise TypeError(f"cannot export a {kind}: longshort.io exports {SUPPORTED}")
