"""Bad input is a clear error at construction: seeds, schedules, val_fraction, fit's data."""

from __future__ import annotations

import numpy as np
import pytest

import longshort as ls
from longshort.cli import main
from longshort.train import TrainConfig, fit
from longshort.train.batches import ArrayBatches


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0"])
def test_train_config_seed_must_be_a_non_negative_integer(seed):
    with pytest.raises(ValueError, match=r"TrainConfig.seed must be a non-negative integer"):
        TrainConfig(seed=seed)


def test_train_config_accepts_numpy_seeds():
    assert TrainConfig(seed=np.int64(3)).seed == 3


@pytest.mark.parametrize(
    "opts, match",
    [({"schedule": "step", "lr_gamma": -1}, r"lr_gamma must be a positive number for schedule='step'"),
     ({"schedule": "step", "lr_gamma": 0}, "lr_gamma must be a positive"),
     ({"schedule": "plateau", "lr_gamma": 1.5}, r"lr_gamma must be in \[0, 1\)"),
     ({"schedule": "cosine", "lr_min": -1}, "lr_min must be a number >= 0"),
     ({"schedule": "cosine", "lr": 1e-3, "lr_min": 0.01}, "must be below lr")],
)  # fmt: skip
def test_train_config_schedule_settings_are_checked_at_construction(opts, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**opts)


def test_schedules_check_their_factors():
    from longshort.nn import Linear

    opt = ls.optim.Adam(Linear(2, 1).parameters(), lr=0.01)
    with pytest.raises(ValueError, match="StepLR: gamma must be a positive number"):
        ls.optim.StepLR(opt, 3, gamma=-1)
    with pytest.raises(ValueError, match="eta_min must be a number >= 0"):
        ls.optim.CosineAnnealingLR(opt, 10, eta_min=-0.1)
    assert ls.optim.StepLR(opt, 3, gamma=0.5).gamma == 0.5


@pytest.mark.parametrize("opts, match", [({"seed": -1}, "seed must be a non-negative integer"),
                                         ({"seed": 1.5}, "seed must be a non-negative integer"),
                                         ({"val_fraction": 1.5}, r"val_fraction must be in \[0, 1\)"),
                                         ({"val_fraction": -0.2}, r"val_fraction must be in \[0, 1\)")])  # fmt: skip
def test_forecaster_checks_seed_and_val_fraction_at_construction(opts, match):
    from longshort.models.forecaster import Forecaster

    with pytest.raises(ValueError, match=match):
        Forecaster(**opts)


class _Model(ls.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = ls.nn.Linear(3, 1)

    def loss(self, batch):
        from longshort.train import LossOutput

        return LossOutput(0.0, lambda: None)


X, Y = np.zeros((8, 3), np.float32), np.zeros((8, 1), np.float32)


def test_fit_names_a_tuple_and_a_bare_array():
    with pytest.raises(TypeError, match=r"dict of arrays.*got a tuple.*\{'x': X, 'y': Y\}"):
        fit(_Model(), (X, Y), max_steps=1)
    with pytest.raises(TypeError, match=r"train_data must be a dict of arrays.*got a ndarray"):
        fit(_Model(), X, max_steps=1)
    with pytest.raises(TypeError, match=r"val_data must be a dict"):
        fit(_Model(), {"x": X}, val_data=[X], max_steps=1)


def test_empty_data_says_it_is_empty_not_drop_last():
    with pytest.raises(ValueError, match="holds 0 examples") as e:
        fit(_Model(), {"x": X[:0], "y": Y[:0]}, max_steps=1)
    assert "drop_last" not in str(e.value)
    with pytest.raises(ValueError, match=r"drop_last=True drops the short one.*at most 8"):
        ArrayBatches({"x": X}, 32, drop_last=True)


def test_checkpoint_dir_that_is_a_file_is_a_clear_error(tmp_path):
    f = tmp_path / "ckpt"
    f.write_text("not a directory")
    for d in (f, f / "sub"):
        with pytest.raises(FileExistsError, match=r"is a file, not a directory"):
            fit(_Model(), {"x": X}, max_steps=1, checkpoint_dir=str(d))


@pytest.mark.parametrize("value", ["-1", "x"])
def test_lab_seed_option_names_itself(value, capsys):
    with pytest.raises(SystemExit) as e:
        main(["lab", "run", "--length", "5", "--seed", value])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "argument --seed" in err and "non-negative integer" in err
