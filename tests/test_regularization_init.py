"""WeightInit: the schemes, LSUV, and the callback (once, never on resume, no RNG trace)."""

import math
import typing
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch import Callback, LightningModule, Trainer, seed_everything
from torch import nn

from lightning_recipes.errors import RecipeConfigError
from lightning_recipes.initialization import WeightInit, init_modules_, lsuv_
from lightning_recipes.initialization.schemes import (
    SCHEME_ALIASES,
    SCHEME_NAMES,
    SCHEMES,
    Scheme,
    resolve_scheme,
)
from lightning_recipes.modules import MLP
from tests.registry import CrashError, UserNet, assert_same, fit, state_of

# ----------------------------------------------------------------------------- math


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def test_one_vocabulary_for_weight_init_and_the_builders() -> None:
    assert SCHEME_NAMES == (*SCHEMES, *SCHEME_ALIASES) == typing.get_args(Scheme)
    assert set(SCHEME_ALIASES.values()) <= set(SCHEMES)
    for name in SCHEME_NAMES:
        canonical = resolve_scheme(name)
        assert WeightInit(name).scheme == canonical  # "he" was refused here, taken by MLP
        if canonical == "lsuv":
            continue  # needs data: MLP refuses it and names WeightInit("lsuv")
        built = []
        for scheme in (name, canonical):
            torch.manual_seed(0)
            built.append(MLP(6, hidden=(5,), activation="tanh", init=scheme)[0].weight)  # type: ignore[arg-type]
        torch.testing.assert_close(built[0], built[1], rtol=0, atol=0)
        # The builder and the pure function draw the same weights for a name.
        torch.manual_seed(0)
        layer = nn.Linear(6, 5)  # draws as the MLP's layer does, then the same init
        init_modules_([layer], name, "tanh")  # type: ignore[arg-type]
        torch.testing.assert_close(built[0], layer.weight, rtol=0, atol=0)
    for refused in (lambda: WeightInit("lecun"), lambda: MLP(4, init="lecun")):  # type: ignore[arg-type]
        with pytest.raises(RecipeConfigError, match="'he', 'he_normal'"):
            refused()


def test_scheme_statistics() -> None:
    layer = nn.Linear(500, 400)
    init_modules_([layer], "kaiming_normal", "relu", generator=_gen())
    assert math.isclose(float(layer.weight.std()), math.sqrt(2 / 500), rel_tol=0.03)
    assert float(layer.bias.abs().max()) == 0.0
    init_modules_([layer], "xavier_uniform", "tanh", generator=_gen())
    expected = (5 / 3) * math.sqrt(2 / 900)
    assert math.isclose(float(layer.weight.std()), expected, rel_tol=0.03)
    init_modules_([layer], "orthogonal", "linear", generator=_gen())
    w = layer.weight
    assert torch.allclose(w @ w.T, torch.eye(400), atol=1e-4)
    before = layer.bias.clone().fill_(0.5)
    layer.bias.data.copy_(before)
    init_modules_([layer], "xavier_normal", "linear", bias="keep", generator=_gen())
    assert torch.equal(layer.bias, before)
    # The same generator seed gives the same weights; the global RNG is not used.
    a, b = nn.Linear(8, 8), nn.Linear(8, 8)
    state = torch.get_rng_state()
    init_modules_([a], "kaiming_uniform", generator=_gen())
    init_modules_([b], "kaiming_uniform", generator=_gen())
    assert torch.equal(a.weight, b.weight)
    assert torch.equal(torch.get_rng_state(), state)
    assert init_modules_([nn.LayerNorm(3)], "orthogonal") == 0  # 1-d weights are skipped


def test_lsuv_makes_every_layer_unit_variance_in_a_deep_tanh_net() -> None:
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for _ in range(20):
        layers += [nn.Linear(32, 32), nn.Tanh()]
    net = nn.Sequential(*layers)
    linears = [(str(i), m) for i, m in enumerate(net) if isinstance(m, nn.Linear)]
    init_modules_([m for _, m in linears], "lsuv", generator=_gen())
    x = torch.randn(512, 32) * 3
    with torch.no_grad():
        variances = lsuv_(lambda: net(x), linears, tol=0.05)
    assert len(variances) == 20
    assert all(abs(v - 1) < 0.05 for v in variances.values()), variances
    with torch.no_grad():  # the outputs really have unit variance, layer by layer
        h = x
        for module in net:
            h = module(h)
            if isinstance(module, nn.Linear):
                assert abs(float(h.var(unbiased=False)) - 1) < 0.06
    # A reduce that doubles every sum (two identical ranks) gives the same variances.
    with torch.no_grad():
        again = lsuv_(lambda: net(x), linears, tol=0.05, reduce=lambda t: t * 2)
    assert all(abs(again[k] - variances[k]) < 0.06 for k in variances)


# ----------------------------------------------------------------------------- callback


class Record(Callback):
    """Keep the weights as training's first batch starts."""

    def __init__(self) -> None:
        self.first: dict[str, torch.Tensor] | None = None

    def on_train_batch_start(
        self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self.first is None:
            self.first = state_of(pl_module)


@pytest.mark.parametrize("scheme", ["kaiming_normal", "orthogonal", "lsuv"])
def test_callback_initialises_once_and_leaves_no_rng_trace(tmp_path: Path, scheme: str) -> None:
    init, record = WeightInit(scheme, nonlinearity="relu"), Record()
    _, model = fit([init, record], tmp_path / "a", dropout=0.2)
    assert init.applied
    assert init.layers == ["backbone.0", "backbone.4", "head"]
    assert record.first is not None
    seed_everything(0)
    default = UserNet()
    assert not torch.equal(record.first["head.weight"], default.head.weight)
    assert float(record.first["head.bias"].abs().max()) == 0.0
    if scheme == "lsuv":
        assert all(abs(v - 1) < 0.1 for v in init.variances.values()), init.variances
    # Training from those weights without the callback gives the same weights bit for bit:
    # the initialisation drew nothing from the global RNG nor the data loader's.

    class Load(Callback):
        def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
            assert record.first is not None
            pl_module.load_state_dict(record.first)

    _, reference = fit([Load()], tmp_path / "b", dropout=0.2)
    assert_same(state_of(model), state_of(reference))
    summary = init.run_summary()
    assert summary.facts["layers initialised"] == 3


def test_never_on_resume(tmp_path: Path) -> None:
    _, whole = fit([WeightInit("lsuv")], tmp_path / "whole")
    with pytest.raises(CrashError):
        fit([WeightInit("lsuv")], tmp_path / "cut", crash_at=2)
    resumed_init = WeightInit("lsuv")
    _, resumed = fit([resumed_init], tmp_path / "cut", ckpt_path=tmp_path / "cut/ckpt/last.ckpt")
    assert resumed_init.skipped_on_resume
    assert resumed_init.applied  # restored from the checkpoint
    assert_same(state_of(whole), state_of(resumed))
    # A checkpoint made without WeightInit is not re-initialised either.
    with pytest.raises(CrashError):
        fit([], tmp_path / "plain", crash_at=1)
    late = WeightInit()
    fit([late], tmp_path / "plain", ckpt_path=tmp_path / "plain/ckpt/last.ckpt")
    assert late.skipped_on_resume
    assert not late.applied


def test_refuses_a_model_without_chosen_layers(tmp_path: Path) -> None:
    with pytest.raises(RecipeConfigError, match="types"):
        fit([WeightInit(types=["Conv2d"])], tmp_path)


BAD: list[tuple[dict[str, Any], str]] = [
    ({"scheme": "lecun"}, "scheme"),
    ({"scheme": None}, "scheme"),
    ({"nonlinearity": "gelu"}, "nonlinearity"),
    ({"bias": "ones"}, "bias"),
    ({"seed": -1}, "seed"),
    ({"seed": 1.5}, "seed"),
    ({"seed": True}, "seed"),
    ({"lsuv_tol": 0}, "lsuv_tol"),
    ({"lsuv_tol": 1.5}, "lsuv_tol"),
    ({"lsuv_max_iter": 0}, "lsuv_max_iter"),
    ({"types": "Linear"}, "types"),
    ({"names": "head"}, "names"),
    ({"exclude": [1]}, "exclude"),
]


@pytest.mark.parametrize(("kwargs", "argument"), BAD)
def test_bad_inputs(kwargs: dict[str, Any], argument: str) -> None:
    with pytest.raises(RecipeConfigError, match=argument):
        WeightInit(**kwargs)
