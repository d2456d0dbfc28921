"""Parameters and the Module base class.

A `Parameter` holds a value (`data`) and its gradient (`grad`, same shape and dtype). A `Module`
registers parameters and sub-modules in assignment order, like PyTorch, so `named_parameters()` and
`state_dict()` produce PyTorch's names (`weight_ih_l0`, `encoder.weight`, ...).

There is no autograd: each module has `forward` (called by `__call__`) and `backward`. Parameter
gradients accumulate (`+=`) over backward calls until `zero_grad()` is called explicitly.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np


class Parameter:
    """A trainable array and its accumulated gradient."""

    __slots__ = ("data", "grad")

    def __init__(self, data: np.ndarray):
        self.data = np.ascontiguousarray(data)
        self.grad = np.zeros_like(self.data)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


class Module:
    """Base class: parameter registry, state dicts, train/eval mode, zero_grad."""

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value) -> None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"call Module.__init__() in {type(self).__name__}.__init__ first")
        params, mods = self.__dict__["_parameters"], self.__dict__["_modules"]
        params.pop(name, None)
        mods.pop(name, None)
        self.__dict__.pop("_param_memo", None)  # lookups of Parameter objects (nn/recurrent.py)
        self.__dict__.pop("_step_memo", None)  # the streaming step's weights (nn/lstm.py)
        if isinstance(value, Parameter):
            params[name] = value
        elif isinstance(value, Module):
            mods[name] = value
        object.__setattr__(self, name, value)

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def __getstate__(self):
        """Copies and pickles leave the lookup memos behind (they hold compiled functions and
        replaced arrays; a copy rebuilds its own on first use)."""
        state = self.__dict__.copy()
        state.pop("_param_memo", None)
        state.pop("_step_memo", None)
        return state

    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError

    # --- registry -------------------------------------------------------------------------------
    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for name, p in self._parameters.items():
            yield prefix + name, p
        for name, m in self._modules.items():
            yield from m.named_parameters(prefix + name + ".")

    def parameters(self) -> list[Parameter]:
        """Every parameter, in named_parameters()'s order (built without the names: zero_grad
        and the optimisers ask for this list at every step)."""
        out = list(self._parameters.values())
        for m in self._modules.values():
            out += m.parameters()
        return out

    def modules(self) -> Iterator[Module]:
        yield self
        for m in self._modules.values():
            yield from m.modules()

    def num_parameters(self) -> int:
        return int(sum(p.data.size for p in self.parameters()))

    # --- modes and gradients --------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad.fill(0)

    # --- state dicts ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter, by PyTorch-style dotted name."""
        return {name: p.data.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: Mapping[str, np.ndarray], strict: bool = True) -> None:
        """Load arrays by name, cast to each parameter's dtype.

        Raises:
            KeyError: listing every missing, unexpected and misshapen key (strict mode), so a
                mismatched checkpoint is diagnosed in one go.
        """
        own = dict(self.named_parameters())
        missing = [k for k in own if k not in state]
        extra = [k for k in state if k not in own]
        bad = [
            f"{k}: expected {own[k].data.shape}, got {tuple(np.shape(state[k]))}"
            for k in own
            if k in state and tuple(np.shape(state[k])) != own[k].data.shape
        ]
        problems = []
        if missing:
            problems.append("missing keys: " + ", ".join(missing))
        if extra and strict:
            problems.append("unexpected keys: " + ", ".join(extra))
        if bad:
            problems.append("wrong shapes: " + "; ".join(bad))
        if problems:
            raise KeyError(
                f"state_dict does not match {type(self).__name__}: "
                + " | ".join(problems)
                + ". Build the model with the same sizes as the one that was saved."
            )
        for k, p in own.items():
            value = np.asarray(state[k])
            if not np.all(np.isfinite(value)):
                raise ValueError(f"state_dict entry {k!r} contains NaN or inf")
            p.data[...] = value.astype(p.data.dtype, copy=False)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={type(v).__name__}" for k, v in self._modules.items())
        return f"{type(self).__name__}({inner})"


class ModuleList(Module):
    """An indexed list of sub-modules named `0`, `1`, ..."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, m: Module) -> None:
        setattr(self, str(len(self._modules)), m)

    def __getitem__(self, i: int) -> Module:
        return list(self._modules.values())[i]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())
