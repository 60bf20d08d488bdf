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
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from lightning_recipes._core.module_modes import evaluation_mode
from lightning_recipes._core.optional import require
from lightning_recipes._core.validate import is_int
from lightning_recipes.attribution.checks import check_method, forward_scores, model_device
from lightning_recipes.errors import RecipeConfigError, choice_error, config_error

__all__ = [
    "METHODS",
    "Explanation",
    "check_arguments",
    "explain",
    "preflight",
    "resolve_method",
    "select_output",
]

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
# Counts that captum takes as positive integers (0 fails late or silently gives nothing).
_COUNTS = frozenset({"n_steps", "n_samples", "internal_batch_size", "perturbations_per_eval"})


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


def resolve_method(method: str | type) -> tuple[str, str, Any]:
    """Resolve a method name or captum class, checking that captum is installed.

    Args:
        method: A name of `METHODS` or a captum attribution class.

    Returns:
        ``(label, key, captum class)``: the name reported in `Explanation`, the key
        used for our defaults and checks, and the class to instantiate.

    Raises:
        RecipeConfigError: For an unknown name or something that is not a class.
        MissingExtraError: If captum (or scikit-learn for kernel_shap and lime) is missing.
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
    if not callable(getattr(attribution_class, "attribute", None)):
        raise config_error(
            "method", label, "Pass a captum attribution class (one with an attribute() method)."
        )
    if key in _SKLEARN:
        require("sklearn.linear_model", extra="attribution", feature=f"explain(method={key!r})")
    return label, key, attribution_class


def check_arguments(
    method: str | type, kwargs: dict[str, Any], batch_size: int = 1, *, argument: str = ""
) -> None:
    """Check the extra keyword arguments of `explain` for ``method``, without a model.

    Args:
        method: A name of `METHODS` or a captum attribution class.
        kwargs: What would be passed to `explain` as ``**kwargs``.
        batch_size: The number of inputs (for the chunking defaults).
        argument: The name under which the caller received ``kwargs`` (e.g.
            ``"method_kwargs"``): errors then name ``method_kwargs['n_steps']``.

    Raises:
        RecipeConfigError: For an unknown method, an argument ``attribute()`` does not
            take, or a sample/step count below 1.
    """
    _, key, attribution_class = resolve_method(method)
    _attribute_kwargs(
        attribution_class,
        _attribute_parameters(attribution_class),
        key,
        batch_size,
        kwargs,
        argument=argument,
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


class _SelectOutput(nn.Module):
    """Wraps a model returning a dict/tuple so that it returns one entry of it."""

    def __init__(self, model: nn.Module, output: int | str) -> None:
        super().__init__()
        self.model = model
        self.output = output

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return select_output(self.model(*args, **kwargs), self.output)


def select_output(value: Any, output: int | str | None) -> Any:
    """The entry ``output`` of a model's dict/tuple/list output (the value itself for None).

    Args:
        value: What the model returned.
        output: A key (for a mapping) or an index (for a tuple/list), or None.

    Returns:
        The selected entry.

    Raises:
        RecipeConfigError: Naming ``output`` when it does not fit the output.

    Examples:
        >>> select_output({"logits": 1, "aux": 2}, "logits"), select_output((3, 4), -1)
        (1, 4)
    """
    if output is None:
        return value
    if isinstance(value, Mapping):
        if output not in value:
            keys = ", ".join(repr(k) for k in value)
            raise config_error("output", output, f"The model returns a dict with keys: {keys}.")
        return value[output]
    if isinstance(value, (tuple, list)):
        if not is_int(output) or not -len(value) <= int(output) < len(value):
            raise config_error(
                "output",
                output,
                f"The model returns a {type(value).__name__} of {len(value)}: pass an index "
                f"in [0, {len(value) - 1}].",
            )
        return value[int(output)]
    raise config_error(
        "output",
        output,
        f"The model returns a {type(value).__name__}, not a dict or tuple: leave output=None.",
    )


def _with_output(model: nn.Module, output: int | str | None) -> nn.Module:
    if output is None:
        return model
    if not (is_int(output) or isinstance(output, str)):
        raise config_error("output", output, "Pass a key (str) or an index (int), or None.")
    return _SelectOutput(model, output)


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
    *,
    argument: str = "",
) -> dict[str, Any]:
    """Our defaults for the arguments ``attribute()`` accepts, updated with the user's."""
    accepted = [_ALIASES.get(name, name) for name in parameters if name not in _OWN]
    renamed: dict[str, Any] = {}
    for name, value in kwargs.items():
        captum_name = _CAPTUM_NAMES.get(name, name)
        label = f"{argument}[{name!r}]" if argument else name
        if name == "return_convergence_delta":
            raise config_error(
                label,
                value,
                "explain() asks for the convergence delta of every method that has one: "
                "read it from Explanation.completeness_gap.",
            )
        if captum_name not in parameters or captum_name in _OWN or name in _ALIASES:
            raise config_error(
                label,
                value,
                f"{attribution_class.__name__}.attribute() does not accept {name!r}; it "
                f"accepts: {', '.join(accepted)}.",
            )
        if captum_name in _COUNTS and (not is_int(value) or value < 1):
            raise config_error(label, value, "Pass a positive integer.")
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
    if isinstance(output, (Mapping, tuple, list)):
        entries = (
            f"keys {', '.join(repr(k) for k in output)}"
            if isinstance(output, Mapping)
            else f"{len(output)} entries"
        )
        raise config_error(
            "output",
            None,
            f"The model returns a {type(output).__name__} ({entries}): pass output=<key or "
            "index> to choose the (N, classes) scores to explain.",
        )
    if not isinstance(output, Tensor) or output.ndim not in (1, 2) or len(output) != batch_size:
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
    elif is_int(target):
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
