"""Non-monotonically triggered averaged SGD (NT-ASGD, Merity et al. 2017, AWD-LSTM).

Plain SGD (w <- w - lr * (g + weight_decay * w)) until the validation loss stops improving: after
each validation the caller passes the loss to `observe(val)`; when it is worse than the best of
the validations more than `nonmono` ago, averaging is triggered. From then on every step also
updates a running average of the iterates,

    ax <- ax + (w - ax) / n         (n = steps since the trigger, counting this one)

and `swap_average()` exchanges the weights with their average (call it again to swap back);
`averaged()` tells whether there is an average. The average and the trigger survive a checkpoint
(they live in the state dict like SGD's momentum).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..nn.module import Parameter
from .optimizer import Optimizer


class NTASGD(Optimizer):
    """NTASGD(params, lr, nonmono=5, weight_decay=0): SGD that starts averaging when triggered."""

    HYPER = ("nonmono", "weight_decay", "trigger_step", "n_avg", "history")

    def __init__(self, params: Iterable[Parameter], lr: float, nonmono: int = 5,
                 weight_decay: float = 0.0):  # fmt: skip
        super().__init__(params, lr)
        if nonmono < 1 or weight_decay < 0:
            raise ValueError(f"NTASGD: nonmono must be >= 1 and weight_decay >= 0, got "
                             f"{nonmono}, {weight_decay}")  # fmt: skip
        self.nonmono, self.weight_decay = int(nonmono), float(weight_decay)
        self.trigger_step = -1  # optimiser step at which averaging began; -1 = not yet
        self.n_avg = 0
        self.history: tuple[float, ...] = ()  # validation losses seen so far

    def observe(self, val: float) -> bool:
        """Record a validation loss; returns True when this one triggers averaging."""
        h = self.history
        trigger = self.trigger_step < 0 and len(h) > self.nonmono and val > min(h[: -self.nonmono])
        self.history = (*h, float(val))
        if trigger:
            self.trigger_step = self.step_count
        return trigger

    def step(self) -> None:
        if self.trigger_step >= 0:
            self.n_avg += 1
        super().step()

    def _update(self, p: Parameter, state: dict[str, np.ndarray]) -> None:
        g = p.grad if self.weight_decay == 0 else p.grad + self.weight_decay * p.data
        p.data -= self.lr * g
        if self.trigger_step >= 0:
            ax = state.get("ax")
            if ax is None:
                ax = state["ax"] = p.data.copy()
            else:
                ax += (p.data - ax) / self.n_avg

    def averaged(self) -> bool:
        return self.trigger_step >= 0 and all("ax" in s for s in self.state)

    def swap_average(self) -> None:
        """Exchange each parameter's value with its running average (an involution)."""
        if not self.averaged():
            raise RuntimeError("NTASGD has not started averaging yet (no trigger so far)")
        for p, s in zip(self.params, self.state):
            tmp = p.data.copy()
            p.data[...] = s["ax"]
            s["ax"][...] = tmp
