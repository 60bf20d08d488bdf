"""The captum methods `explain` runs: their names, classes, arguments and our defaults.

`resolve_method` turns a name of `METHODS` (or a captum class) into the class to run,
checking that captum is installed; `check_arguments` checks the extra keyword arguments
for a method without a model. The private helpers build the call to ``attribute()``: our
chunking and sample-count defaults, the user's arguments checked and renamed, and the
baselines shaped as each method takes them.
"""

import inspect
from typing import Any

import torch
from torch import Tensor

from lightning_recipes._core.optional import require
from lightning_recipes._core.validate import is_int
from lightning_recipes.errors import choice_error, config_error

__all__ = ["METHODS", "check_arguments", "resolve_method"]

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
# Arguments explain() passes itself; not accepted in **kwargs.
_OWN = ("inputs", "baselines", "target", "return_convergence_delta")
# Captum arguments whose name explain() uses itself, and the keyword that reaches them.
_ALIASES = {"method": "integration_method"}
_CAPTUM_NAMES = {alias: name for name, alias in _ALIASES.items()}
# Counts that captum takes as positive integers (0 fails late or silently gives nothing).
_COUNTS = frozenset({"n_steps", "n_samples", "internal_batch_size", "perturbations_per_eval"})


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
