"""Up-front checks for `explain`: catch what would make a captum method fail or mislead.

`check_method` validates the inputs, the baselines and the method's required arguments
before any attribution runs, and for DeepLift and DeepLiftShap runs one forward pass to
find what DeepLift cannot handle: one activation module called more than once (its hooks
keep one input/output per module, so the second call overwrites the first), and
nonlinearities called as functions (``torch.relu``, ``F.relu``) that DeepLift never sees.
Each problem raises `RecipeConfigError` with the fix.
"""

import warnings
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.modules.activation as _activation
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from lightning_recipes.errors import RecipeConfigError, config_error

__all__ = ["check_baselines", "check_method", "forward_scores", "model_device"]

#: Activation modules: every nonlinearity class of ``torch.nn.modules.activation``.
_ACTIVATION_TYPES: tuple[type[nn.Module], ...] = tuple(
    obj
    for obj in vars(_activation).values()
    if isinstance(obj, type)
    and issubclass(obj, nn.Module)
    and obj.__module__ == _activation.__name__
    and obj is not nn.MultiheadAttention
)
# DeepLift keeps one input and output per module, so a reused pooling layer breaks it too.
_REUSE_TYPES: tuple[type[nn.Module], ...] = (
    *_ACTIVATION_TYPES,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
)
# The module types captum's DeepLift has a rule for (its SUPPORTED_NON_LINEAR).
_DEEPLIFT_RULES: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ELU,
    nn.LeakyReLU,
    nn.Sigmoid,
    nn.Tanh,
    nn.Softplus,
    nn.Softmax,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
)
# Functional nonlinearities (torch.*, torch.nn.functional.* and Tensor methods share names).
_FUNCTIONAL_NAMES = frozenset(
    {
        "relu",
        "relu_",
        "sigmoid",
        "sigmoid_",
        "tanh",
        "tanh_",
        "gelu",
        "elu",
        "elu_",
        "leaky_relu",
        "leaky_relu_",
        "softmax",
        "log_softmax",
        "silu",
    }
)
_DEEPLIFT = frozenset({"deep_lift", "deep_lift_shap"})
_GRADIENT = frozenset(
    {"gradient_shap", "integrated_gradients", "deep_lift", "deep_lift_shap", "saliency"}
)
_CLASS_NAMES = {
    "DeepLift": "deep_lift",
    "DeepLiftShap": "deep_lift_shap",
    "GradientShap": "gradient_shap",
    "IntegratedGradients": "integrated_gradients",
    "Saliency": "saliency",
    "Occlusion": "occlusion",
}


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without parameters).

    Args:
        model: The model.

    Returns:
        The device the inputs must be on.

    Examples:
        >>> from torch import nn
        >>> model_device(nn.Linear(2, 1)), model_device(nn.ReLU())
        (device(type='cpu'), device(type='cpu'))
    """
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def forward_scores(model: nn.Module, inputs: Tensor, additional_forward_args: Any = None) -> Any:
    """Call the model as captum does: ``model(inputs, *additional_forward_args)``.

    Args:
        model: The model.
        inputs: The inputs, on the model's device.
        additional_forward_args: ``None``, one extra argument, or a tuple of them.

    Returns:
        The model's output.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> forward_scores(nn.Linear(2, 3), torch.ones(4, 2)).shape
        torch.Size([4, 3])
    """
    if additional_forward_args is None:
        return model(inputs)
    if isinstance(additional_forward_args, tuple):
        return model(inputs, *additional_forward_args)
    return model(inputs, additional_forward_args)


def check_method(
    model: nn.Module,
    inputs: Any,
    method_name: str,
    baselines: Tensor | float | None,
    kwargs: Mapping[str, Any],
) -> None:
    """Check that ``method_name`` can explain ``model`` on ``inputs``, before running it.

    Checks the inputs (a tensor with a batch dimension; floating point for gradient
    methods), the baselines' shape, the arguments a method requires (``occlusion`` needs
    ``sliding_window_shapes``; ``deep_lift_shap`` a distribution of at least 2 baselines)
    and, for ``deep_lift`` and ``deep_lift_shap``, the model itself: one forward pass of
    ``inputs`` under ``torch.no_grad`` (in the model's current mode: `explain` calls this
    in eval mode) finds activation modules called more than once and nonlinearities called
    as functions outside activation modules. It also warns about activation modules that
    captum's DeepLift has no rule for (it uses the plain gradient there).

    Args:
        model: The model to explain.
        inputs: The inputs to explain, ``(N, ...)``.
        method_name: A name of `METHODS` (``"deep_lift"``) or a captum class name
            (``"DeepLift"``); other names get the generic checks only.
        baselines: The baselines as passed to `explain`.
        kwargs: The extra keyword arguments passed to `explain`.

    Raises:
        RecipeConfigError: If a check fails; the message says what to change.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> relu = nn.ReLU()
        >>> model = nn.Sequential(nn.Linear(3, 3), relu, nn.Linear(3, 2), relu)
        >>> check_method(model, torch.ones(2, 3), "deep_lift", None, {})
        Traceback (most recent call last):
        ...
        lightning_recipes.errors.RecipeConfigError: ... use a separate nn.ReLU() instance ...
        >>> check_method(model, torch.ones(2, 3), "saliency", None, {})  # no model check
    """
    name = _CLASS_NAMES.get(method_name, method_name)
    if not isinstance(inputs, Tensor) or inputs.ndim < 2:
        shown = tuple(inputs.shape) if isinstance(inputs, Tensor) else type(inputs).__name__
        raise config_error(
            "inputs",
            shown,
            "Pass one tensor of shape (N, ...) with a batch dimension, e.g. "
            "inputs.unsqueeze(0) for a single example.",
        )
    if name in _GRADIENT and not inputs.is_floating_point():
        raise config_error(
            "inputs",
            inputs.dtype,
            f"{method_name} differentiates the output with respect to the inputs, which "
            "needs floating-point inputs: convert them, or use a perturbation method "
            "(feature_ablation, occlusion, shapley_value_sampling, kernel_shap, lime).",
        )
    _check_baselines(inputs, name, baselines)
    if name == "occlusion":
        _check_window(inputs, kwargs)
    if name in _DEEPLIFT:
        _check_deeplift_model(model, inputs, method_name, kwargs.get("additional_forward_args"))


def check_baselines(inputs: Tensor, method_name: str, baselines: Tensor | float | None) -> None:
    """Check the baselines' type and shape against the inputs (see `check_method`).

    Args:
        inputs: The inputs to explain, ``(N, ...)``.
        method_name: A name of `METHODS` or a captum class name.
        baselines: The baselines as passed to `explain`.

    Raises:
        RecipeConfigError: Naming ``baselines``, with the shape expected.
    """
    _check_baselines(inputs, _CLASS_NAMES.get(method_name, method_name), baselines)


def _check_baselines(inputs: Tensor, name: str, baselines: Tensor | float | None) -> None:
    if baselines is None or (
        isinstance(baselines, (int, float)) and not isinstance(baselines, bool)
    ):
        return
    if not isinstance(baselines, Tensor):
        raise config_error(
            "baselines",
            type(baselines).__name__,
            "Pass None, a number, or a tensor of baselines shaped like the inputs.",
        )
    sample_shape = tuple(inputs.shape[1:])
    if baselines.ndim == inputs.ndim - 1:
        count, shape = 1, tuple(baselines.shape)
    elif baselines.ndim == inputs.ndim:
        count, shape = baselines.shape[0], tuple(baselines.shape[1:])
    else:
        count, shape = 0, tuple(baselines.shape)
    if count == 0 or shape != sample_shape:
        raise config_error(
            "baselines",
            tuple(baselines.shape),
            f"Pass baselines of shape (B, {', '.join(map(str, sample_shape))}): B samples "
            f"shaped like one input {sample_shape}.",
        )
    if name == "deep_lift_shap" and count < 2:
        raise config_error(
            "baselines",
            tuple(baselines.shape),
            "deep_lift_shap averages DeepLift over a distribution of baselines and needs at "
            "least 2 samples: pass several training inputs (e.g. baselines=x_train[:16]).",
        )


def _check_window(inputs: Tensor, kwargs: Mapping[str, Any]) -> None:
    window = kwargs.get("sliding_window_shapes")
    example = (1,) * (inputs.ndim - 1)
    if window is None:
        raise config_error(
            "sliding_window_shapes",
            None,
            "occlusion needs the shape of the window it occludes, one size per input "
            "dimension after the batch: e.g. sliding_window_shapes=(1, 2, 2) for 1x8x8 "
            f"images or (1,) for tabular inputs; for inputs of shape "
            f"{tuple(inputs.shape[1:])}, e.g. sliding_window_shapes={example}.",
        )
    flat = isinstance(window, tuple) and bool(window) and isinstance(window[0], int)
    if flat and len(window) != inputs.ndim - 1:
        raise config_error(
            "sliding_window_shapes",
            window,
            f"Pass one size per input dimension after the batch ({inputs.ndim - 1} for "
            f"inputs of shape {tuple(inputs.shape)}), e.g. {example}.",
        )


class _FunctionalActivations(TorchFunctionMode):
    """Counts functional nonlinearity calls, by the innermost module running at the time."""

    def __init__(self, stack: list[str]) -> None:
        super().__init__()
        self.stack = stack
        self.calls: Counter[tuple[str, str]] = Counter()

    def __torch_function__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        name = getattr(func, "__name__", "")
        if name in _FUNCTIONAL_NAMES:
            self.calls[(self.stack[-1] if self.stack else "", name)] += 1
        return func(*args, **(kwargs or {}))


@contextmanager
def _module_stack(model: nn.Module, calls: Counter[str], stack: list[str]) -> Iterator[None]:
    """Track the running modules in ``stack`` (activations marked) and count nonlinearities."""
    handles = []

    def push(name: str, module: nn.Module) -> Any:
        def hook(*_: Any) -> None:
            if isinstance(module, _REUSE_TYPES):
                calls[name] += 1
            stack.append("" if isinstance(module, _ACTIVATION_TYPES) else name or "<model>")

        return hook

    def pop(*_: Any) -> None:
        if stack:
            stack.pop()

    try:
        for name, module in model.named_modules():
            handles.append(module.register_forward_pre_hook(push(name, module)))
            handles.append(module.register_forward_hook(pop, always_call=True))
        yield
    finally:
        for handle in handles:
            handle.remove()


def _check_deeplift_model(
    model: nn.Module, inputs: Tensor, method_name: str, additional_forward_args: Any
) -> None:
    calls: Counter[str] = Counter()
    stack: list[str] = []
    counter = _FunctionalActivations(stack)
    with torch.no_grad(), _module_stack(model, calls, stack), counter:
        forward_scores(model, inputs.to(model_device(model)), additional_forward_args)
    modules = dict(model.named_modules())
    for path, count in calls.items():
        if count > 1:
            kind = type(modules[path]).__name__
            raise RecipeConfigError(
                f"Invalid model for method={method_name!r}: the module {path or '<model>'!r} "
                f"(nn.{kind}) is called {count} times in one forward pass; use a separate "
                f"nn.{kind}() instance for each use: DeepLift needs one module per "
                "nonlinearity."
            )
    # Calls inside activation modules are recorded under "" and are what DeepLift sees.
    outside = {key: n for key, n in counter.calls.items() if key[0]}
    if outside:
        (where, func), count = next(iter(outside.items()))
        raise RecipeConfigError(
            f"Invalid model for method={method_name!r}: DeepLift cannot see functional "
            "activations (torch.relu / F.relu in forward): replace them by nn.ReLU modules "
            f"(one instance per use). Found {func}() called {count} time(s) in the forward "
            f"of {where!r}."
        )
    unsupported = sorted(
        {type(modules[path]).__name__ for path in calls}
        - {kind.__name__ for kind in _DEEPLIFT_RULES}
    )
    if unsupported:
        warnings.warn(
            f"captum's DeepLift has no rule for {', '.join(unsupported)}: it uses the plain "
            "gradient there, so the attributions need not add up to f(x) - f(baseline) "
            "(see Explanation.completeness_gap). Rules exist for ReLU, ELU, LeakyReLU, "
            "Sigmoid, Tanh, Softplus, Softmax and MaxPool.",
            UserWarning,
            stacklevel=4,
        )
