"""`explain`: one captum attribution method on a batch of inputs, safely, in any Trainer stage.

`explain` puts the model in eval mode (each submodule's mode restored afterwards), leaves
``torch.inference_mode`` and ``torch.no_grad`` (which Lightning's ``validate``, ``test`` and
``predict`` run under), moves the inputs to the model's device, picks the explained class,
chooses baselines, chunks the work, checks the method's requirements up front (see
`check_method`) and measures the completeness gap of the methods that have one. Captum
(the ``attribution`` extra) is imported only when `explain` runs.
"""

import inspect
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from lightning_recipes._optional import require
from lightning_recipes.attribution.checks import check_method, forward_scores, model_device
from lightning_recipes.errors import choice_error, config_error

__all__ = ["METHODS", "Explanation", "explain"]

#: Our method names and the captum classes they run; ``"gradient_shap"`` is the default.
METHODS: dict[str, str] = {
    "gradient_shap": "GradientShap",
    "kernel_shap": "KernelShap",
    "shapley_value_sampling": "ShapleyValueSampling",
    "integrated_gradients": "IntegratedGradients",
    "deep_lift": "DeepLift",
    "deep_lift_shap": "DeepLiftShap",
    "saliency": "Saliency",
    "lime": "Lime",
    "occlusion": "Occlusion",
    "feature_ablation": "FeatureAblation",
}
_BY_CLASS = {class_name: name for name, class_name in METHODS.items()}
# Methods that take a distribution of baselines rather than one baseline per input.
_DISTRIBUTION = frozenset({"gradient_shap", "deep_lift_shap"})
# Methods whose default interpretable model is a scikit-learn one.
_SKLEARN = frozenset({"kernel_shap", "lime"})
_N_SAMPLES = {"gradient_shap": 20, "kernel_shap": 200, "lime": 200, "shapley_value_sampling": 25}
_PERTURBATIONS_PER_EVAL = 16
# Captum's notes about what explain() does on purpose: a batch for Lime and KernelShap (one
# interpretable model per input), inputs cloned without requires_grad, DeepLift's hooks.
_EXPECTED_WARNINGS = (
    "You are providing multiple inputs",
    "Input Tensor .* did not already require gradients",
    "Setting forward, backward hooks and attributes on non-linear",
)
# Arguments explain() passes itself; not accepted in **kwargs.
_OWN = ("inputs", "baselines", "target", "return_convergence_delta")
# Captum arguments whose name explain() uses itself, and the keyword that reaches them.
_ALIASES = {"method": "integration_method"}
_CAPTUM_NAMES = {alias: name for name, alias in _ALIASES.items()}


@dataclass
class Explanation:
    """The attributions of one method for a batch of inputs, detached and on the CPU.

    Attributes:
        method: The name in `METHODS`, or the captum class name when a class was passed.
        attributions: ``float32``, the inputs' shape: each input feature's contribution to
            the explained output.
        target: ``(N,)`` ``long``: the class explained for each input.
        completeness_gap: ``(N,)``: ``|sum(attributions) - (f(x) - f(baseline))|`` per
            input, for the methods with a convergence delta (``integrated_gradients``,
            ``deep_lift``, ``deep_lift_shap``, ``gradient_shap``; for the last two the mean
            over the baseline samples), else ``None``. Near 0 means the attributions add
            up to the change of the output.

    Examples:
        >>> import torch
        >>> e = Explanation("saliency", torch.ones(2, 3), torch.tensor([0, 1]), None)
        >>> e.attributions.shape, e.completeness_gap
        (torch.Size([2, 3]), None)
    """

    method: str
    attributions: Tensor
    target: Tensor
    completeness_gap: Tensor | None


def explain(
    model: nn.Module,
    inputs: Tensor,
    method: str | type = "gradient_shap",
    target: int | Tensor | None = None,
    baselines: Tensor | float | None = None,
    **kwargs: Any,
) -> Explanation:
    """Attribute the model's output for each input to the input features, with captum.

    Safe in any Trainer stage: it runs in eval mode (every submodule's ``training`` flag
    and every parameter's ``requires_grad`` flag are restored afterwards, also on errors;
    parameters do not require gradients meanwhile, so no ``.grad`` is touched), outside
    ``torch.inference_mode``/``torch.no_grad`` (the inputs are cloned into ordinary
    tensors), on the model's device, and returns CPU tensors.

    Baselines: zeros by default. ``gradient_shap`` and ``deep_lift_shap`` take a
    distribution of baselines and default to 2 zero samples: pass real training samples
    (e.g. ``baselines=x_train[:32]``) for SHAP values that compare against the data. The
    other methods take one baseline, shared by all inputs (``(1, ...)``) or one per input
    (``(N, ...)``); a distribution of another size is reduced to its mean. A number means
    a constant baseline; a tensor shaped like one input is used for every input.
    ``saliency`` has no baseline and ignores it.

    Chunking and sample counts (override them in ``**kwargs``): ``internal_batch_size``
    (default ``len(inputs)``) for ``integrated_gradients``; ``perturbations_per_eval=16``
    for the perturbation methods; ``n_samples`` 20 for ``gradient_shap``, 200 for
    ``kernel_shap`` and ``lime``, 25 for ``shapley_value_sampling``; ``n_steps=50`` for
    ``integrated_gradients`` (its ``method``, the integration rule, is passed as
    ``integration_method=``, e.g. ``"riemann_trapezoid"``). ``kernel_shap`` and ``lime``
    fit one scikit-learn model per input (captum's default), so they need scikit-learn.

    Args:
        model: Maps ``(N, ...)`` inputs to ``(N, classes)`` scores (or ``(N,)``).
        inputs: The inputs to explain, with a batch dimension.
        method: A name of `METHODS`, or a captum attribution class (e.g.
            ``captum.attr.Saliency``), constructed with the model.
        target: The class to explain: ``None`` for the predicted class
            (``model(inputs).argmax(-1)``), an int for all inputs, or ``(N,)`` indices.
        baselines: ``None`` (zeros), a number, or a tensor (see above).
        **kwargs: Passed to the captum method's ``attribute()`` (e.g. ``n_steps``,
            ``sliding_window_shapes``, ``feature_mask``, ``additional_forward_args``).

    Returns:
        The `Explanation`: attributions shaped like ``inputs``, the explained classes and,
        for methods with a convergence delta, the completeness gap.

    Raises:
        RecipeConfigError: For an unknown method, a keyword argument the method does not
            accept, a target outside the model's outputs, or a failed `check_method`.
        MissingExtraError: If captum (the ``attribution`` extra) is not installed.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> _ = torch.manual_seed(0)
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
        >>> result = explain(model, torch.randn(5, 4), "integrated_gradients", n_steps=100)
        >>> result.attributions.shape, result.target.shape
        (torch.Size([5, 4]), torch.Size([5]))
        >>> bool(result.completeness_gap.max() < 1e-3)
        True
    """
    if isinstance(method, str):
        if method not in METHODS:
            raise choice_error("method", method, list(METHODS))
        label, key = method, method
    elif isinstance(method, type):
        label = method.__name__
        key = _BY_CLASS.get(label, label)
    else:
        raise config_error(
            "method", method, f"Pass a name of METHODS ({', '.join(METHODS)}) or a captum class."
        )
    captum_attr = require("captum.attr", extra="attribution", feature="explain")
    attribution_class: Any = getattr(captum_attr, METHODS[key]) if key in METHODS else method
    if key in _SKLEARN:
        require("sklearn.linear_model", extra="attribution", feature=f"explain(method={key!r})")
    parameters = _attribute_parameters(attribution_class)
    batch_size = len(inputs) if isinstance(inputs, Tensor) and inputs.ndim else 1
    call = _attribute_kwargs(attribution_class, parameters, key, batch_size, kwargs)
    with _explaining(model):
        check_method(model, inputs, key, baselines, kwargs)
        x = inputs.to(model_device(model)).clone()
        with torch.no_grad():
            output = forward_scores(model, x, kwargs.get("additional_forward_args"))
        captum_target, explained = _resolve_target(target, output, len(x))
        call["inputs"] = x
        call["target"] = captum_target
        if "baselines" in parameters:
            call["baselines"] = _baselines(key, x, baselines)
        explainer = attribution_class(model)
        with_delta = "return_convergence_delta" in parameters and bool(
            explainer.has_convergence_delta()
        )
        if with_delta:
            call["return_convergence_delta"] = True
        with warnings.catch_warnings():
            for message in _EXPECTED_WARNINGS:
                warnings.filterwarnings("ignore", message=message)
            result = explainer.attribute(**call)
        attributions, delta = result if with_delta else (result, None)
        gap = None
        if delta is not None:
            gap = delta.detach().abs().reshape(len(x), -1).mean(dim=1).to("cpu", torch.float32)
        return Explanation(
            method=label,
            attributions=attributions.detach().to("cpu", torch.float32),
            target=explained,
            completeness_gap=gap,
        )


@contextmanager
def _explaining(model: nn.Module) -> Iterator[None]:
    """Eval mode, gradients on, inference mode off, parameters frozen; all restored."""
    modes = [(module, module.training) for module in model.modules()]
    flags = [(parameter, parameter.requires_grad) for parameter in model.parameters()]
    with torch.inference_mode(False), torch.enable_grad():
        try:
            model.eval()
            for parameter, _ in flags:
                parameter.requires_grad_(False)
            yield
        finally:
            for module, training in modes:
                module.training = training
            for parameter, requires_grad in flags:
                parameter.requires_grad_(requires_grad)


def _attribute_parameters(attribution_class: Any) -> dict[str, inspect.Parameter]:
    """The named parameters of ``attribute()`` (``self`` and ``**kwargs`` left out)."""
    signature = inspect.signature(attribution_class.attribute)
    return {
        name: parameter
        for name, parameter in signature.parameters.items()
        if name != "self"
        and parameter.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    }


def _attribute_kwargs(
    attribution_class: Any,
    parameters: dict[str, inspect.Parameter],
    key: str,
    batch_size: int,
    kwargs: dict[str, Any],
) -> dict[str, Any]:
    """Our defaults for the arguments ``attribute()`` accepts, updated with the user's."""
    accepted = [_ALIASES.get(name, name) for name in parameters if name not in _OWN]
    renamed: dict[str, Any] = {}
    for name, value in kwargs.items():
        captum_name = _CAPTUM_NAMES.get(name, name)
        if name == "return_convergence_delta":
            raise config_error(
                name,
                value,
                "explain() asks for the convergence delta of every method that has one: "
                "read it from Explanation.completeness_gap.",
            )
        if captum_name not in parameters or captum_name in _OWN or name in _ALIASES:
            raise config_error(
                name,
                value,
                f"{attribution_class.__name__}.attribute() does not accept {name!r}; it "
                f"accepts: {', '.join(accepted)}.",
            )
        renamed[captum_name] = value
    defaults: dict[str, Any] = {
        "internal_batch_size": max(batch_size, 1),
        "perturbations_per_eval": _PERTURBATIONS_PER_EVAL,
    }
    if key in _N_SAMPLES:
        defaults["n_samples"] = _N_SAMPLES[key]
    if key == "integrated_gradients":
        defaults["n_steps"] = 50
    call = {name: value for name, value in defaults.items() if name in parameters}
    call.update(renamed)
    return call


def _resolve_target(
    target: int | Tensor | None, output: Any, batch_size: int
) -> tuple[Any, Tensor]:
    """Captum's ``target`` argument and the ``(N,)`` explained classes on the CPU."""
    if not isinstance(output, Tensor) or output.ndim not in (1, 2):
        shown = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
        raise config_error(
            "model output",
            shown,
            "explain() needs a model returning (N, classes) scores (or (N,) scores): wrap "
            "the model so that it returns one score per class.",
        )
    if output.ndim == 1:
        if target is not None:
            raise config_error(
                "target", target, "The model returns one score per input: leave target=None."
            )
        return None, torch.zeros(batch_size, dtype=torch.long)
    classes = output.shape[1]
    if target is None:
        explained = output.argmax(dim=-1)
    elif isinstance(target, Tensor) and not target.is_floating_point():
        explained = target.detach().to(output.device, torch.long).reshape(-1).clone()
        if explained.numel() == 1:
            explained = explained.expand(batch_size).clone()
        elif explained.numel() != batch_size:
            raise config_error(
                "target",
                tuple(target.shape),
                f"Pass one class index per input ({batch_size}) or a single int.",
            )
    elif isinstance(target, int) and not isinstance(target, bool):
        explained = torch.full((batch_size,), target, dtype=torch.long, device=output.device)
    else:
        raise config_error("target", target, "Pass None, an int or a tensor of class indices.")
    if len(explained) and not (int(explained.min()) >= 0 and int(explained.max()) < classes):
        raise config_error(
            "target",
            target,
            f"The model has {classes} outputs: pass class indices in [0, {classes - 1}].",
        )
    return explained, explained.cpu()


def _baselines(key: str, x: Tensor, baselines: Tensor | float | None) -> Tensor:
    """The baselines as captum takes them, on ``x``'s device and dtype."""
    count = 2 if key in _DISTRIBUTION else 1
    if baselines is None:
        return torch.zeros(count, *x.shape[1:], dtype=x.dtype, device=x.device)
    if not isinstance(baselines, Tensor):
        value = float(baselines)
        return torch.full((count, *x.shape[1:]), value, dtype=x.dtype, device=x.device)
    chosen = baselines.detach().to(x.device, x.dtype).clone()
    if chosen.ndim == x.ndim - 1:
        chosen = chosen.unsqueeze(0)
    if key in METHODS and key not in _DISTRIBUTION and len(chosen) not in (1, len(x)):
        chosen = chosen.mean(dim=0, keepdim=True)
    return chosen
