"""Learning-rate schedules that set `optimizer.lr`, matching torch.optim.lr_scheduler.

Call `step()` once per epoch (or per batch, if that is the unit of the schedule) after
`optimizer.step()`; `ReduceLROnPlateau.step(metric)` takes the monitored value. With base_lr the
optimiser's lr when the schedule was built and e the number of step() calls so far:

    StepLR              lr_e = base_lr * gamma^floor(e / step_size)
    CosineAnnealingLR   lr_e = eta_min + (base_lr - eta_min) (1 + cos(pi e / T_max)) / 2
    ReduceLROnPlateau   lr <- max(lr * factor, min_lr) after more than `patience` steps without an
                        improvement beyond `threshold`, then waits `cooldown` steps

StepLR and CosineAnnealingLR use torch's recursive forms (each step rescales the current lr), so the
sequences agree with torch to the last bit. `state_dict()` returns a JSON-able dict of scalars.
"""

from __future__ import annotations

import math

from .optimizer import Optimizer


class _Schedule:
    """Shared bookkeeping: the optimiser, base_lr, last_epoch and the state dict."""

    FIELDS: tuple[str, ...] = ()  # attributes saved besides last_epoch and base_lr

    def __init__(self, optimizer: Optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__} needs an optimiser, got {type(optimizer)}")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_epoch = 0

    @property
    def last_lr(self) -> float:
        """The learning rate the optimiser uses now."""
        return self.optimizer.lr

    def state_dict(self) -> dict:
        state = {"type": type(self).__name__, "last_epoch": self.last_epoch}
        state["base_lr"] = self.base_lr
        state.update({f: getattr(self, f) for f in self.FIELDS})
        return state

    def load_state_dict(self, state: dict) -> None:
        if state.get("type") != type(self).__name__:
            raise ValueError(
                f"state dict is for a {state.get('type')} schedule, not {type(self).__name__}"
            )
        for f in ("last_epoch", "base_lr", *self.FIELDS):
            setattr(self, f, state[f])


class StepLR(_Schedule):
    """Multiply lr by `gamma` every `step_size` steps."""

    FIELDS = ("step_size", "gamma")

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        super().__init__(optimizer)
        if not isinstance(step_size, int) or step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size!r}")
        if (
            isinstance(gamma, bool)
            or not isinstance(gamma, int | float)
            or not 0 < gamma < math.inf
        ):
            raise ValueError(
                f"StepLR: gamma must be a positive number (lr is multiplied by it every "
                f"step_size steps; e.g. 0.1), got {gamma!r}"
            )
        self.step_size, self.gamma = step_size, float(gamma)

    def step(self) -> None:
        self.last_epoch += 1
        if self.last_epoch % self.step_size == 0:
            self.optimizer.lr = self.optimizer.lr * self.gamma


class CosineAnnealingLR(_Schedule):
    """Anneal lr from base_lr to eta_min along half a cosine over T_max steps, then back up."""

    FIELDS = ("T_max", "eta_min")

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0):
        super().__init__(optimizer)
        if not isinstance(T_max, int) or T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be a positive integer, got {T_max!r}")
        if (
            isinstance(eta_min, bool)
            or not isinstance(eta_min, int | float)
            or not 0 <= eta_min < math.inf
        ):
            raise ValueError(
                f"CosineAnnealingLR: eta_min must be a number >= 0 (the lowest lr), got {eta_min!r}"
            )
        self.T_max, self.eta_min = T_max, float(eta_min)

    def step(self) -> None:
        self.last_epoch += 1
        e, T, lo, lr = self.last_epoch, self.T_max, self.eta_min, self.optimizer.lr
        if (e - 1 - T) % (2 * T) == 0:  # leaving the minimum: the ratio below would divide by 0
            lr = lr + (self.base_lr - lo) * (1 - math.cos(math.pi / T)) / 2
        else:
            ratio = (1 + math.cos(math.pi * e / T)) / (1 + math.cos(math.pi * (e - 1) / T))
            lr = ratio * (lr - lo) + lo
        self.optimizer.lr = lr


class ReduceLROnPlateau(_Schedule):
    """Cut lr by `factor` when the monitored metric stops improving.

    A metric a improves on the best b when (mode "min", threshold_mode "rel") a < b (1 - threshold),
    ("min", "abs") a < b - threshold, ("max", "rel") a > b (1 + threshold), ("max", "abs")
    a > b + threshold. Reductions smaller than `eps` are skipped, as in torch.
    """

    FIELDS = (
        "mode",
        "factor",
        "patience",
        "threshold",
        "threshold_mode",
        "cooldown",
        "min_lr",
        "eps",
        "num_bad_epochs",
        "cooldown_counter",
    )

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
        threshold_mode: str = "rel",
        eps: float = 1e-8,
    ):
        super().__init__(optimizer)
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        if not 0.0 <= factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be in [0, 1), got {factor}")
        self.mode, self.threshold_mode = mode, threshold_mode
        self.factor, self.patience, self.threshold = float(factor), int(patience), threshold
        self.cooldown, self.min_lr, self.eps = int(cooldown), float(min_lr), float(eps)
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0

    def _is_better(self, a: float) -> bool:
        b, th = self.best, self.threshold
        if self.mode == "min":
            return a < (b * (1 - th) if self.threshold_mode == "rel" else b - th)
        return a > (b * (1 + th) if self.threshold_mode == "rel" else b + th)

    def step(self, metric: float) -> None:
        """Record one value of the monitored metric (e.g. the validation loss)."""
        current = float(metric)
        self.last_epoch += 1
        if self._is_better(current):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during the cooldown do not count
        if self.num_bad_epochs > self.patience:
            old = self.optimizer.lr
            new = max(old * self.factor, self.min_lr)
            if old - new > self.eps:
                self.optimizer.lr = new
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["best"] = None if math.isinf(self.best) else self.best  # JSON has no infinity
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        worst = math.inf if self.mode == "min" else -math.inf
        self.best = worst if state["best"] is None else float(state["best"])
