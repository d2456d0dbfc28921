"""The base class of the optimisers: parameter list, learning rate, per-parameter state, and a
state dict that a checkpoint can store without pickle.

An optimiser holds a list of `Parameter`s (from `module.parameters()`), reads each `p.grad` and
updates `p.data` in place. The learning rate is the plain attribute `lr`; schedules change it.

State dict format (arrays go to safetensors, scalars to JSON):

    {"arrays":  {"state.<i>.<key>": np.ndarray},   # i = index in the parameter list
     "scalars": {"type": "Adam", "lr": ..., "step": ..., "shapes": [[...], ...], <hyperparameters>}}
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ..nn.module import Parameter


class Optimizer:
    """Subclasses set HYPER (names of their hyperparameter attributes) and implement `_update`."""

    HYPER: tuple[str, ...] = ()

    def __init__(self, params: Iterable[Parameter], lr: float):
        name = type(self).__name__
        params = list(params)
        if not params:
            raise ValueError(f"{name} got an empty parameter list; pass model.parameters()")
        for i, p in enumerate(params):
            if not isinstance(p, Parameter):
                raise TypeError(
                    f"{name}: parameter {i} is a {type(p).__name__}, not a Parameter; "
                    "pass model.parameters()"
                )
        if len({id(p) for p in params}) != len(params):
            raise ValueError(f"{name}: a parameter appears more than once in the list")
        self.params = params
        self.lr = float(lr)
        self._check_lr()
        self.step_count = 0  # number of step() calls so far (torch's state["step"])
        self.state: list[dict[str, np.ndarray]] = [{} for _ in params]

    def _check_lr(self) -> None:
        if not (math.isfinite(self.lr) and self.lr >= 0):
            raise ValueError(
                f"{type(self).__name__}: lr must be a finite number >= 0, got {self.lr}"
            )

    def zero_grad(self) -> None:
        """Set every parameter's gradient to zero (gradients accumulate until this is called)."""
        for p in self.params:
            p.grad[...] = 0

    def step(self) -> None:
        """Update every parameter in place from its current gradient."""
        self._check_lr()
        self.step_count += 1
        for p, state in zip(self.params, self.state):
            self._update(p, state)

    def _update(self, p: Parameter, state: dict[str, np.ndarray]) -> None:  # pragma: no cover
        raise NotImplementedError

    # --- state dicts ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, dict]:
        """Copies of the per-parameter arrays and the JSON-able scalars (see the module doc)."""
        arrays = {
            f"state.{i}.{key}": arr.copy()
            for i, state in enumerate(self.state)
            for key, arr in state.items()
        }
        scalars = {
            "type": type(self).__name__,
            "lr": self.lr,
            "step": self.step_count,
            "shapes": [list(p.data.shape) for p in self.params],
        }
        for h in self.HYPER:
            v = getattr(self, h)
            scalars[h] = list(v) if isinstance(v, tuple) else v
        return {"arrays": arrays, "scalars": scalars}

    def load_state_dict(self, state_dict: dict[str, dict]) -> None:
        """Restore lr, step count, hyperparameters and per-parameter arrays (as torch does).

        Raises:
            ValueError: when the state comes from another optimiser type or another parameter list.
        """
        name = type(self).__name__
        scalars, arrays = state_dict["scalars"], state_dict["arrays"]
        if scalars.get("type") != name:
            raise ValueError(f"state dict is for a {scalars.get('type')} optimiser, not {name}")
        shapes = [list(p.data.shape) for p in self.params]
        if [list(s) for s in scalars["shapes"]] != shapes:
            raise ValueError(
                f"{name} state dict was saved for {len(scalars['shapes'])} parameters of shapes "
                f"{scalars['shapes']}, but this optimiser has {len(shapes)} of shapes {shapes}; "
                "build the optimiser on the same model"
            )
        new_state: list[dict[str, np.ndarray]] = [{} for _ in self.params]
        for key, arr in arrays.items():
            _, i, field = key.split(".", 2)
            p = self.params[int(i)]
            a = np.asarray(arr)
            if a.shape != p.data.shape:
                raise ValueError(f"{name} state {key!r} has shape {a.shape}, expected {p.shape}")
            new_state[int(i)][field] = a.astype(p.data.dtype, copy=True)
        self.state = new_state
        self.lr = float(scalars["lr"])
        self.step_count = int(scalars["step"])
        for h in self.HYPER:
            v = scalars[h]
            setattr(self, h, tuple(v) if isinstance(v, list) else v)

    def __repr__(self) -> str:
        hyper = ", ".join(f"{h}={getattr(self, h)}" for h in self.HYPER)
        return f"{type(self).__name__}({len(self.params)} parameters, lr={self.lr}, {hyper})"
