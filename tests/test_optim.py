"""Optimisers, clipping and schedules against torch.optim: ten training steps of an LSTM regressor
give the same losses and parameters, the schedules the same learning rates, and a saved optimiser
state continues exactly where it stopped."""

import json

import numpy as np
import pytest
import torch

import longshort as ls
from longshort.ops.losses import mse_backward, mse_forward
from reference.torch_ref import max_abs, to_t

OPTIMIZERS = {
    "adam": (ls.optim.Adam, torch.optim.Adam, {"lr": 1e-2}),
    "adam_l2": (ls.optim.Adam, torch.optim.Adam, {"lr": 1e-2, "weight_decay": 1e-2}),
    "adamw": (ls.optim.AdamW, torch.optim.AdamW, {"lr": 1e-2, "weight_decay": 0.1}),
    "sgd_momentum": (ls.optim.SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}),
    "sgd_nesterov": (
        ls.optim.SGD,
        torch.optim.SGD,
        {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3},
    ),
}


class Regressor(ls.nn.Module):
    """LSTM(3 -> 8, 2 layers) then Linear(8 -> 1) on every step."""

    def __init__(self, seed=0):
        super().__init__()
        self.lstm = ls.nn.LSTM(3, 8, num_layers=2, dtype=np.float64, seed=seed)
        self.head = ls.nn.Linear(8, 1, dtype=np.float64, seed=seed + 1)

    def forward(self, x):
        y, _ = self.lstm(x)  # (B, T, 8)
        return self.head(y)  # (B, T, 1)

    def backward(self, dpred):
        self.lstm.backward(self.head.backward(dpred))


def _batch():
    rng = np.random.default_rng(0)
    return rng.standard_normal((4, 6, 3)), 3 * rng.standard_normal((4, 6, 1))


def _torch_model(model):
    lstm = torch.nn.LSTM(3, 8, num_layers=2, batch_first=True, dtype=torch.float64)
    head = torch.nn.Linear(8, 1, dtype=torch.float64)
    sd = {k: torch.tensor(v) for k, v in model.state_dict().items()}
    lstm.load_state_dict({k[5:]: v for k, v in sd.items() if k.startswith("lstm.")})
    head.load_state_dict({k[5:]: v for k, v in sd.items() if k.startswith("head.")})
    return lstm, head


def _train_ours(model, opt, x, target, steps):
    losses, norms = [], []
    for _ in range(steps):
        opt.zero_grad()
        loss, cache = mse_forward(model(x), target)
        model.backward(mse_backward(cache))
        norms.append(ls.optim.clip_grad_norm(model.parameters(), 1.0))
        opt.step()
        losses.append(loss)
    return np.array(losses), np.array(norms)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_ten_steps_match_torch(name):
    ours_cls, torch_cls, kw = OPTIMIZERS[name]
    x, target = _batch()
    model = Regressor()
    lstm, head = _torch_model(model)
    tparams = list(lstm.parameters()) + list(head.parameters())
    topt = torch_cls(tparams, **kw)
    tlosses = []
    for _ in range(10):
        topt.zero_grad()
        loss = torch.nn.functional.mse_loss(head(lstm(to_t(x))[0]), to_t(target))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(tparams, 1.0)
        topt.step()
        tlosses.append(loss.item())

    losses, norms = _train_ours(model, ours_cls(model.parameters(), **kw), x, target, 10)
    assert norms.max() > 1.0  # clipping was active at least once
    assert np.max(np.abs(losses - tlosses) / np.abs(tlosses)) < 1e-9
    tnames = [f"lstm.{n}" for n, _ in lstm.named_parameters()]
    tnames += [f"head.{n}" for n, _ in head.named_parameters()]
    ours = dict(model.named_parameters())
    for tn, tp in zip(tnames, tparams):
        err = max_abs(ours[tn].data, tp) / float(tp.detach().abs().max())
        assert err < 1e-9, tn


def test_clip_grad_norm_matches_torch():
    rng = np.random.default_rng(1)
    for scale in (0.01, 10.0):  # below and above max_norm
        grads = [scale * rng.standard_normal(s) for s in ((3, 4), (5,), (2, 2, 2))]
        params = [ls.nn.Parameter(np.zeros_like(g)) for g in grads]
        tparams = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
        for p, tp, g in zip(params, tparams, grads):
            p.grad[...] = g
            tp.grad = torch.tensor(g)
        norm = ls.optim.clip_grad_norm(params, 1.0)
        tnorm = torch.nn.utils.clip_grad_norm_(tparams, 1.0).item()
        assert abs(norm - tnorm) < 1e-12 * tnorm
        for p, tp in zip(params, tparams):
            assert max_abs(p.grad, tp.grad) < 1e-15


def test_clip_grad_norm_rejects_nan():
    params = [ls.nn.Parameter(np.zeros(3)), ls.nn.Parameter(np.zeros(2))]
    params[1].grad[0] = np.nan
    with pytest.raises(FloatingPointError, match=r"nan.*parameter 1 \(shape \(2,\)\)"):
        ls.optim.clip_grad_norm(params, 1.0)


# --- schedules ------------------------------------------------------------------------------------
def _metrics():
    rng = np.random.default_rng(2)
    return 1.0 / np.arange(1, 31) ** 0.3 + 0.05 * rng.standard_normal(30)


SCHEDULES = {
    "step": (ls.optim.StepLR, torch.optim.lr_scheduler.StepLR, {"step_size": 7, "gamma": 0.5}),
    "cosine": (
        ls.optim.CosineAnnealingLR,
        torch.optim.lr_scheduler.CosineAnnealingLR,
        {"T_max": 10, "eta_min": 1e-3},
    ),
    "plateau_min": (
        ls.optim.ReduceLROnPlateau,
        torch.optim.lr_scheduler.ReduceLROnPlateau,
        {"factor": 0.5, "patience": 2, "cooldown": 1, "min_lr": 0.01},
    ),
    "plateau_max_abs": (
        ls.optim.ReduceLROnPlateau,
        torch.optim.lr_scheduler.ReduceLROnPlateau,
        {"mode": "max", "threshold": 0.02, "threshold_mode": "abs", "patience": 1},
    ),
}


def _lr_sequence(make_opt, make_sched, kw, steps=30, resume_at=None):
    """Learning rates after each of `steps` schedule steps; optionally save and resume midway."""
    metrics = _metrics()
    opt = make_opt()
    sched = make_sched(opt, **kw)
    lrs = []
    for e in range(steps):
        if e == resume_at:  # a fresh optimiser and schedule restored from JSON round trips
            o_state, s_state = opt.state_dict(), json.loads(json.dumps(sched.state_dict()))
            opt = make_opt()
            opt.load_state_dict(o_state)
            sched = make_sched(opt, **kw)
            sched.load_state_dict(s_state)
        opt.step()  # torch warns when a schedule steps before its optimiser
        if "patience" in kw:
            sched.step(metrics[e])
        else:
            sched.step()
        lrs.append(opt.lr if hasattr(opt, "lr") else opt.param_groups[0]["lr"])
    return np.array(lrs)


@pytest.mark.parametrize("name", SCHEDULES)
def test_schedules_match_torch(name):
    ours, theirs, kw = SCHEDULES[name]
    ours_lr = _lr_sequence(lambda: ls.optim.SGD([ls.nn.Parameter(np.zeros(2))], lr=0.1), ours, kw)
    torch_lr = _lr_sequence(
        lambda: torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1), theirs, kw
    )
    assert len(set(ours_lr.tolist())) > 2  # the schedule did change the rate
    assert np.max(np.abs(ours_lr - torch_lr)) <= 1e-15
    resumed = _lr_sequence(
        lambda: ls.optim.SGD([ls.nn.Parameter(np.zeros(2))], lr=0.1), ours, kw, resume_at=13
    )
    assert np.array_equal(resumed, ours_lr)


# --- optimiser state round trip -------------------------------------------------------------------
@pytest.mark.parametrize("name", ["adam", "adamw", "sgd_nesterov"])
def test_state_dict_round_trip_continues_exactly(name):
    cls, _, kw = OPTIMIZERS[name]
    x, target = _batch()
    model = Regressor()
    full, _ = _train_ours(model, cls(model.parameters(), **kw), x, target, 10)
    final = model.state_dict()

    model = Regressor()
    opt = cls(model.parameters(), **kw)
    first, _ = _train_ours(model, opt, x, target, 4)
    saved = opt.state_dict()
    arrays = {k: v.copy() for k, v in saved["arrays"].items()}
    scalars = json.loads(json.dumps(saved["scalars"]))
    model_state = model.state_dict()

    model = Regressor(seed=5)  # different weights, overwritten by the checkpoint
    model.load_state_dict(model_state)
    opt = cls(model.parameters(), lr=123.0)  # hyperparameters come from the state
    opt.load_state_dict({"arrays": arrays, "scalars": scalars})
    rest, _ = _train_ours(model, opt, x, target, 6)
    assert np.array_equal(np.concatenate([first, rest]), full)
    for k, v in model.state_dict().items():
        assert np.array_equal(v, final[k]), k


def test_load_state_dict_rejects_mismatches():
    model = Regressor()
    state = ls.optim.Adam(model.parameters()).state_dict()
    with pytest.raises(ValueError, match="Adam optimiser, not SGD"):
        ls.optim.SGD(model.parameters(), lr=0.1).load_state_dict(state)
    with pytest.raises(ValueError, match="saved for 10 parameters"):
        ls.optim.Adam(model.lstm.parameters()).load_state_dict(state)


def test_optimizer_argument_errors():
    p = [ls.nn.Parameter(np.zeros(2))]
    with pytest.raises(ValueError, match="empty parameter list"):
        ls.optim.Adam([])
    with pytest.raises(ValueError, match="nesterov"):
        ls.optim.SGD(p, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        ls.optim.Adam(p, betas=(0.9, 1.0))
    with pytest.raises(TypeError, match="not a Parameter"):
        ls.optim.SGD([np.zeros(2)], lr=0.1)
    opt = ls.optim.SGD(p, lr=0.1)
    opt.lr = float("nan")
    with pytest.raises(ValueError, match="lr must be"):
        opt.step()
