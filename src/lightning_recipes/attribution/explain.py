"""`explain`: one captum attribution method on a batch of inputs, safely, in any Trainer stage.

`explain` puts the model in eval mode (each submodule's mode restored afterwards), leaves
``torch.inference_mode`` and ``torch.no_grad`` (which Lightning's ``validate``, ``test`` and
``predict`` run under), moves the inputs to the model's device, picks the explained class,
chooses baselines, chunks the work, checks the method's requirements up front (see
`check_method`) and measures the completeness gap of the methods that have one. Captum
(the ``attribution`` extra) is imported only when `explain` runs. The methods and their
arguments are in `methods`, the choice of scores and classes in `scores`, the result in
`explanation`.
"""

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from lightning_recipes._core.module_modes import evaluation_mode
from lightning_recipes.attribution.checks import check_method, forward_scores, model_device
from lightning_recipes.attribution.explanation import Explanation
from lightning_recipes.attribution.methods import (
    METHODS,
    _attribute_kwargs,
    _attribute_parameters,
    _baselines,
    check_arguments,
    resolve_method,
)
from lightning_recipes.attribution.scores import _resolve_target, _with_output, select_output
from lightning_recipes.errors import RecipeConfigError, config_error

__all__ = [
    "METHODS",
    "Explanation",
    "check_arguments",
    "explain",
    "preflight",
    "resolve_method",
    "select_output",
]

# Captum's notes about what explain() does on purpose: a batch for Lime and KernelShap (one
# interpretable model per input), inputs cloned without requires_grad, DeepLift's hooks.
_EXPECTED_WARNINGS = (
    "You are providing multiple inputs",
    "Input Tensor .* did not already require gradients",
    "Setting forward, backward hooks and attributes on non-linear",
)


def explain(
    model: nn.Module,
    inputs: Tensor,
    method: str | type = "gradient_shap",
    target: int | Tensor | None = None,
    baselines: Tensor | float | None = None,
    *,
    output: int | str | None = None,
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
        output: For a model returning a dict, tuple or list: the key or index of the
            scores to explain (e.g. ``"logits"`` or ``0``); None for a model returning a
            tensor.
        **kwargs: Passed to the captum method's ``attribute()`` (e.g. ``n_steps``,
            ``sliding_window_shapes``, ``feature_mask``, ``additional_forward_args``).

    Returns:
        The `Explanation`: attributions shaped like ``inputs``, the explained classes and,
        for methods with a convergence delta, the completeness gap.

    Raises:
        RecipeConfigError: For an unknown method, a keyword argument the method does not
            accept (or a count such as ``n_steps`` below 1), a target outside the model's
            outputs, an output that is not ``(N, classes)`` scores (a dict or tuple without
            ``output``), or a failed `check_method`.
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
    label, key, attribution_class = resolve_method(method)
    parameters = _attribute_parameters(attribution_class)
    batch_size = len(inputs) if isinstance(inputs, Tensor) and inputs.ndim else 1
    call = _attribute_kwargs(attribution_class, parameters, key, batch_size, kwargs)
    model = _with_output(model, output)
    with _explaining(model):
        check_method(model, inputs, key, baselines, kwargs)
        x = inputs.to(model_device(model)).clone()
        with torch.no_grad():
            scores = forward_scores(model, x, kwargs.get("additional_forward_args"))
        captum_target, explained = _resolve_target(target, scores, len(x))
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


def preflight(
    model: nn.Module,
    inputs: Tensor,
    method: str | type = "gradient_shap",
    baselines: Tensor | float | None = None,
    *,
    output: int | str | None = None,
    **kwargs: Any,
) -> None:
    """Everything `explain` checks before attributing, plus one short forward pass.

    Checks the method and its arguments, `check_method` (inputs, baselines, the
    method's requirements), and runs the model on the first two inputs to check that the
    (selected) output is ``(N, classes)`` scores. Runs like `explain` (eval mode,
    parameters frozen, every flag restored), so that a callback can call it before
    training and fail early instead of after it. Draws no random numbers itself.

    Args:
        model: The model.
        inputs: The inputs to explain, with a batch dimension.
        method: As for `explain`.
        baselines: As for `explain`.
        output: As for `explain`.
        **kwargs: As for `explain`.

    Raises:
        RecipeConfigError: What `explain` would raise; ``inputs`` if the model fails on
            them (the model's error is chained).
    """
    _, key, _ = resolve_method(method)
    batch_size = len(inputs) if isinstance(inputs, Tensor) and inputs.ndim else 1
    check_arguments(method, kwargs, batch_size)
    selected = _with_output(model, output)
    with _explaining(selected):
        check_method(selected, inputs, key, baselines, kwargs)
        x = inputs[:2].to(model_device(model)).clone()
        try:
            with torch.no_grad():
                scores = forward_scores(selected, x, kwargs.get("additional_forward_args"))
        except RecipeConfigError:
            raise
        except Exception as error:  # the model's own error, reported against `inputs`
            raise config_error(
                "inputs",
                f"<tensor of shape {tuple(inputs.shape)}>",
                f"{type(model).__name__} failed on them ({type(error).__name__}: {error}). "
                "Pass inputs shaped like the model's input, with a batch dimension.",
            ) from error
        _resolve_target(None, scores, len(x))


@contextmanager
def _explaining(model: nn.Module) -> Iterator[None]:
    """Eval mode, gradients on, inference mode off, parameters frozen; all restored."""
    flags = [(parameter, parameter.requires_grad) for parameter in model.parameters()]
    with evaluation_mode(model):
        try:
            for parameter, _ in flags:
                parameter.requires_grad_(False)
            yield
        finally:
            for parameter, requires_grad in flags:
                parameter.requires_grad_(requires_grad)
