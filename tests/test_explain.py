"""explain(): every captum method, Trainer-stage safety, completeness and up-front checks."""

import sys
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from lightning_recipes import MissingExtraError, RecipeConfigError
from lightning_recipes.attribution.checks import check_method
from lightning_recipes.attribution.explain import METHODS, Explanation, explain

DELTA_METHODS = {"integrated_gradients", "deep_lift", "deep_lift_shap", "gradient_shap"}
EXTRA = {"occlusion": {"sliding_window_shapes": (1,)}}


def mlp(activation: type[nn.Module] = nn.ReLU, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(6, 8), activation(), nn.Linear(8, 8), activation(), nn.Linear(8, 3)
    )


def tabular(n: int = 4, seed: int = 1) -> Tensor:
    return torch.randn(n, 6, generator=torch.Generator().manual_seed(seed))


class SharedReLU(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(6, 8)
        self.act = nn.ReLU()
        self.second = nn.Linear(8, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.second(self.act(self.first(x))))


class FunctionalReLU(nn.Module):
    def __init__(self, activation: Callable[[Tensor], Tensor] = torch.relu) -> None:
        super().__init__()
        self.first = nn.Linear(6, 8)
        self.second = nn.Linear(8, 3)
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        return self.second(self.activation(self.first(x)))


# ------------------------------------------------------------------ every method


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_runs_on_tabular_inputs(method: str) -> None:
    torch.manual_seed(0)
    inputs = tabular()
    result = explain(mlp(), inputs, method, **EXTRA.get(method, {}))
    assert isinstance(result, Explanation)
    assert result.method == method
    assert result.attributions.shape == inputs.shape
    assert result.attributions.dtype == torch.float32
    assert result.attributions.device.type == "cpu"
    assert not result.attributions.requires_grad
    assert result.target.shape == (4,)
    assert result.target.dtype == torch.long
    assert torch.isfinite(result.attributions).all()
    if method in DELTA_METHODS:
        assert result.completeness_gap is not None
        assert result.completeness_gap.shape == (4,)
        assert (result.completeness_gap >= 0).all()
    else:
        assert result.completeness_gap is None


def test_a_captum_class_is_used_directly() -> None:
    from captum.attr import Saliency

    inputs = tabular()
    result = explain(mlp(), inputs, Saliency)
    assert result.method == "Saliency"
    assert torch.equal(result.attributions, explain(mlp(), inputs, "saliency").attributions)


def test_deep_lift_adds_up_on_a_relu_network() -> None:
    result = explain(mlp(), tabular(), "deep_lift")
    assert result.completeness_gap is not None
    assert float(result.completeness_gap.max()) < 1e-4


def test_baselines_forms() -> None:
    model, inputs = mlp(), tabular()
    zeros = explain(model, inputs, "integrated_gradients").attributions
    assert torch.allclose(
        explain(model, inputs, "integrated_gradients", baselines=0.0).attributions, zeros
    )
    one = explain(model, inputs, "integrated_gradients", baselines=torch.zeros(6)).attributions
    assert torch.allclose(one, zeros)
    # A distribution for a one-baseline method is reduced to its mean (what the callback passes).
    background = torch.stack([torch.ones(6), -torch.ones(6)])
    mean = explain(model, inputs, "feature_ablation", baselines=background).attributions
    assert torch.allclose(mean, explain(model, inputs, "feature_ablation").attributions)
    result = explain(model, inputs, "kernel_shap", baselines=background, n_samples=50)
    assert result.attributions.shape == inputs.shape
    with pytest.raises(RecipeConfigError, match="baselines"):
        explain(model, inputs, "integrated_gradients", baselines=torch.zeros(1, 5))


# ------------------------------------------------------------------ Trainer-stage safety


def test_inside_inference_mode_equals_outside() -> None:
    model = mlp()
    outside = explain(model, tabular(), "integrated_gradients")
    with torch.inference_mode():
        inputs = tabular()
        baselines = torch.zeros(1, 6)
        inside = explain(model, inputs, "integrated_gradients", baselines=baselines)
        shap = explain(model, inputs, "deep_lift_shap")
    assert torch.equal(inside.attributions, outside.attributions)
    assert torch.equal(inside.target, outside.target)
    assert not inside.attributions.is_inference()
    assert shap.attributions.shape == inputs.shape


def test_inside_no_grad() -> None:
    model = mlp()
    outside = explain(model, tabular(), "saliency")
    with torch.no_grad():
        inside = explain(model, tabular(), "saliency")
    assert torch.equal(inside.attributions, outside.attributions)


def test_module_modes_and_requires_grad_are_restored() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(6, 8),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(8, 8),
        nn.Dropout(0.5),
        nn.Linear(8, 3),
    )
    model.train()
    model[4].eval()  # deliberately in eval mode: must stay so
    model[0].requires_grad_(False)  # a frozen layer: must stay frozen
    modes = [m.training for m in model.modules()]
    flags = [p.requires_grad for p in model.parameters()]
    first = explain(model, tabular(), "integrated_gradients")
    second = explain(model, tabular(), "integrated_gradients")
    assert [m.training for m in model.modules()] == modes
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())
    # Eval mode switches the dropout off, so the explanation is deterministic.
    assert torch.equal(first.attributions, second.attributions)


def test_modes_are_restored_after_an_error() -> None:
    model = mlp()
    model.train()
    with pytest.raises(RecipeConfigError):
        explain(model, tabular(), "integrated_gradients", target=7)
    assert all(m.training for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())


# ------------------------------------------------------------------ completeness


def test_integrated_gradients_completeness_improves_with_steps() -> None:
    model, inputs = mlp(nn.Tanh), 3 * tabular(8)
    fine = explain(model, inputs, "integrated_gradients", n_steps=200).completeness_gap
    assert fine is not None
    assert float(fine.max()) < 1e-2
    # Captum's default Gauss-Legendre rule is exact to float precision already at 10 steps
    # on so small a model; the trapezoid rule shows the convergence.
    gaps = []
    for steps in (10, 200):
        gap = explain(
            model,
            inputs,
            "integrated_gradients",
            n_steps=steps,
            integration_method="riemann_trapezoid",
        ).completeness_gap
        assert gap is not None
        gaps.append(float(gap.mean()))
    assert gaps[1] < gaps[0] / 10
    assert gaps[1] < 1e-2
    assert explain(model, inputs, "saliency").completeness_gap is None


def test_integrated_gradients_of_a_linear_model_are_weight_times_input() -> None:
    torch.manual_seed(0)
    model = nn.Linear(6, 2)
    inputs = tabular()
    result = explain(model, inputs, "integrated_gradients", target=1)
    assert torch.allclose(result.attributions, model.weight[1].detach() * inputs, atol=1e-5)
    assert torch.equal(result.target, torch.ones(4, dtype=torch.long))


# ------------------------------------------------------------------ up-front checks


def test_deep_lift_rejects_a_reused_activation_module() -> None:
    with pytest.raises(RecipeConfigError, match=r"'act'.*separate nn\.ReLU\(\) instance"):
        explain(SharedReLU(), tabular(), "deep_lift")
    with pytest.raises(RecipeConfigError, match="'act'"):
        explain(SharedReLU(), tabular(), "deep_lift_shap")
    explain(SharedReLU(), tabular(), "integrated_gradients")  # other methods do not care


@pytest.mark.parametrize("activation", [torch.relu, F.relu, Tensor.relu, torch.sigmoid])
def test_deep_lift_rejects_functional_activations(activation: Callable[[Tensor], Tensor]) -> None:
    with pytest.raises(RecipeConfigError, match=r"functional activations .*nn\.ReLU modules"):
        explain(FunctionalReLU(activation), tabular(), "deep_lift")


def test_deep_lift_accepts_separate_modules_and_warns_without_a_rule() -> None:
    explain(mlp(), tabular(), "deep_lift")
    with pytest.warns(UserWarning, match="no rule for GELU"):
        explain(mlp(nn.GELU), tabular(), "deep_lift")


def test_deep_lift_shap_needs_two_baselines() -> None:
    with pytest.raises(RecipeConfigError, match="at least 2"):
        explain(mlp(), tabular(), "deep_lift_shap", baselines=torch.zeros(1, 6))


def test_occlusion_needs_a_window() -> None:
    with pytest.raises(RecipeConfigError, match=r"sliding_window_shapes=\(1,\)"):
        explain(mlp(), tabular(), "occlusion")
    with pytest.raises(RecipeConfigError, match="one size per input dimension"):
        explain(mlp(), tabular(), "occlusion", sliding_window_shapes=(1, 2))


def test_inputs_need_a_batch_dimension() -> None:
    with pytest.raises(RecipeConfigError, match="batch dimension"):
        explain(mlp(), torch.zeros(6), "saliency")
    with pytest.raises(RecipeConfigError, match="batch dimension"):
        explain(mlp(), torch.tensor(1.0), "integrated_gradients")
    with pytest.raises(RecipeConfigError, match="floating-point"):
        check_method(mlp(), torch.zeros(2, 6, dtype=torch.long), "saliency", None, {})


# ------------------------------------------------------------------ target and arguments


def test_target_defaults_to_the_predicted_class() -> None:
    model, inputs = mlp(), tabular(16)
    result = explain(model, inputs, "saliency")
    assert torch.equal(result.target, model(inputs).argmax(-1))
    explicit = explain(model, inputs, "saliency", target=2)
    assert torch.equal(explicit.target, torch.full((16,), 2))
    per_input = torch.arange(16) % 3
    assert torch.equal(explain(model, inputs, "saliency", target=per_input).target, per_input)


@pytest.mark.parametrize("target", [3, -1, torch.tensor([0, 1, 2, 5])])
def test_target_out_of_range(target: int | Tensor) -> None:
    with pytest.raises(RecipeConfigError, match=r"target=.*\[0, 2\]"):
        explain(mlp(), tabular(), "saliency", target=target)


def test_unknown_method() -> None:
    with pytest.raises(RecipeConfigError, match=r"method='shap'.*'gradient_shap'"):
        explain(mlp(), tabular(), "shap")


def test_unsupported_keyword_argument() -> None:
    with pytest.raises(RecipeConfigError, match=r"n_stpes=10.*accepts: .*n_steps"):
        explain(mlp(), tabular(), "integrated_gradients", n_stpes=10)
    with pytest.raises(RecipeConfigError, match="n_steps"):
        explain(mlp(), tabular(), "saliency", n_steps=10)
    with pytest.raises(RecipeConfigError, match=r"integration_method='riemann_right'.*accepts"):
        explain(mlp(), tabular(), "saliency", integration_method="riemann_right")
    with pytest.raises(RecipeConfigError, match="return_convergence_delta"):
        explain(mlp(), tabular(), "integrated_gradients", return_convergence_delta=False)


def test_keyword_arguments_reach_captum() -> None:
    model, inputs = mlp(), tabular()
    signed = explain(model, inputs, "saliency", abs=False).attributions
    assert (signed < 0).any()
    assert torch.allclose(signed.abs(), explain(model, inputs, "saliency").attributions)


def test_scalar_output_models() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 1), nn.Flatten(0))
    result = explain(model, tabular(), "integrated_gradients")
    assert torch.equal(result.target, torch.zeros(4, dtype=torch.long))
    with pytest.raises(RecipeConfigError, match="one score per input"):
        explain(model, tabular(), "saliency", target=0)


def test_missing_captum_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "captum", None)
    monkeypatch.setitem(sys.modules, "captum.attr", None)
    with pytest.raises(MissingExtraError, match="attribution") as info:
        explain(mlp(), tabular())
    assert info.value.extra == "attribution"


def test_functional_activations_in_activation_modules_are_fine() -> None:
    # nn.Softmax / nn.GELU call their functional version: that must not count as functional.
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 3), nn.Sigmoid(), nn.Linear(3, 3), nn.Softmax(dim=-1))
    explain(model, tabular(), "deep_lift")


class _DictModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(4, 3)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return {"logits": self.net(x), "aux": self.net(x).sum(dim=1)}


class _TupleModel(_DictModel):
    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        return self.net(x).sum(dim=1, keepdim=True), self.net(x)


def test_output_selects_the_scores_of_a_dict_or_tuple_model() -> None:
    torch.manual_seed(0)
    x = torch.randn(5, 4)
    model = _DictModel()
    plain = explain(model.net, x, "integrated_gradients")
    by_key = explain(model, x, "integrated_gradients", output="logits")
    by_index = explain(_TupleModel(), x, "saliency", output=1)
    assert torch.allclose(plain.attributions, by_key.attributions)
    assert by_index.attributions.shape == (5, 4)
    with pytest.raises(RecipeConfigError, match=r"Invalid output=None.*keys 'logits', 'aux'"):
        explain(model, x, "saliency")


@pytest.mark.parametrize(
    ("model", "args", "kwargs", "argument"),
    [
        (nn.Linear(4, 3), ("nope",), {}, "method"),
        (nn.Linear(4, 3), (42,), {}, "method"),
        (nn.Linear(4, 3), ("saliency",), {"target": 1.5}, "target"),
        (nn.Linear(4, 3), ("saliency",), {"target": -1}, "target"),
        (nn.Linear(4, 3), ("saliency",), {"target": torch.tensor([0, 1])}, "target"),
        (nn.Linear(4, 3), ("integrated_gradients",), {"baselines": "abc"}, "baselines"),
        (nn.Linear(4, 3), ("integrated_gradients",), {"baselines": torch.ones(2, 5)}, "baselines"),
        (nn.Linear(4, 3), ("saliency",), {"nope": 1}, "nope"),
        (nn.Linear(4, 3), ("integrated_gradients",), {"n_steps": 0}, "n_steps"),
        (nn.Linear(4, 3), ("gradient_shap",), {"n_samples": 2.5}, "n_samples"),
        (
            nn.Linear(4, 3),
            ("feature_ablation",),
            {"perturbations_per_eval": 0},
            "perturbations_per_eval",
        ),
        (nn.Linear(4, 3), ("saliency",), {"output": "logits"}, "output"),
        (nn.Linear(4, 3), ("saliency",), {"output": 1.5}, "output"),
        (_DictModel(), ("saliency",), {"output": "probs"}, "output"),
        (_TupleModel(), ("saliency",), {"output": 2}, "output"),
    ],
)
def test_explain_bad_inputs(
    model: nn.Module, args: tuple[object, ...], kwargs: dict[str, object], argument: str
) -> None:
    with pytest.raises(RecipeConfigError, match=f"Invalid {argument}="):
        explain(model, torch.randn(3, 4), *args, **kwargs)  # type: ignore[arg-type]
