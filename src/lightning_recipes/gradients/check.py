"""Gradient checks: finite differences against autograd, and batch-mixing detection.

The callback that runs the batch-mixing check at the start of training is
`lightning_recipes.gradients.batch_mixing_check.BatchMixingCheck`; its old path here
(``lightning_recipes.gradients.check.BatchMixingCheck``) still works for one release, with a
`DeprecationWarning`.
"""

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from lightning_recipes._core.deprecation import moved_attribute
from lightning_recipes._core.module_modes import evaluation_mode
from lightning_recipes._core.tables import format_table
from lightning_recipes._core.validate import is_int, is_number
from lightning_recipes.errors import config_error

__all__ = [
    "GradCheckReport",
    "GradCheckRow",
    "batch_mixing",
    "check_gradients",
    "evaluation_mode",
]


def _first_tensor(output: Any) -> Tensor:
    if isinstance(output, Tensor):
        return output
    values = output.values() if isinstance(output, dict) else output
    for value in values:
        if isinstance(value, Tensor):
            return value
    raise config_error(
        "model output", type(output).__name__, "Return a tensor (or a tuple/dict of them)."
    )


@dataclass(frozen=True)
class GradCheckRow:
    """Agreement of autograd and finite differences on one tensor.

    Attributes:
        name: ``"input"`` or the parameter's name.
        checked: Entries compared.
        max_abs_error: Largest |autograd - finite difference|.
        max_rel_error: Largest relative error.
        worst_index: Flat index of the worst entry.
        autograd: Autograd's value there.
        numeric: The finite difference there.
        ok: Whether every entry is within ``atol + rtol * |numeric|``.
    """

    name: str
    checked: int
    max_abs_error: float
    max_rel_error: float
    worst_index: int
    autograd: float
    numeric: float
    ok: bool


@dataclass
class GradCheckReport:
    """The result of `check_gradients`: one row per checked tensor.

    Attributes:
        rows: Per-tensor results, input first.
        ok: True when every row agrees.
    """

    rows: list[GradCheckRow] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when autograd and finite differences agree everywhere checked."""
        return all(row.ok for row in self.rows)

    @property
    def mismatches(self) -> list[GradCheckRow]:
        """The failing rows, worst relative error first."""
        return sorted((r for r in self.rows if not r.ok), key=lambda r: -r.max_rel_error)

    def __str__(self) -> str:
        verdict = "OK: autograd matches finite differences" if self.ok else "MISMATCH"
        rows = sorted(self.rows, key=lambda r: (r.ok, -r.max_rel_error))
        table = format_table(
            [
                "tensor",
                "checked",
                "max abs err",
                "max rel err",
                "worst index",
                "autograd",
                "numeric",
                "ok",
            ],
            [
                [
                    r.name,
                    r.checked,
                    r.max_abs_error,
                    r.max_rel_error,
                    r.worst_index,
                    r.autograd,
                    r.numeric,
                    "yes" if r.ok else "NO",
                ]
                for r in rows
            ],
        )
        return f"Gradient check: {verdict}\n{table}"


def check_gradients(
    module: nn.Module,
    example_input: Tensor,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    max_entries: int = 64,
    seed: int = 0,
) -> GradCheckReport:
    """Compare autograd's gradients with central finite differences, in float64.

    A copy of ``module`` in float64 and eval mode computes ``f = sum(output * R)`` for a
    fixed random ``R`` (so every output contributes); the gradient of ``f`` with respect to
    the input and to every parameter is compared, entry by entry, with
    ``(f(x + eps) - f(x - eps)) / (2 eps)``. Large tensors are sampled (``max_entries``
    random entries each). Use it on a tiny input to validate custom layers and custom
    ``autograd.Function`` backward passes. The module itself is not modified.

    Args:
        module: The model (a deep copy is checked).
        example_input: A small floating input batch, e.g. 2 samples.
        eps: Finite-difference step.
        atol: Absolute tolerance.
        rtol: Relative tolerance.
        max_entries: Entries compared per tensor, at most.
        seed: Seed of the projection and of the sampled entries.

    Returns:
        A report; ``print(report)`` shows the worst mismatches first.

    Examples:
        >>> import torch
        >>> report = check_gradients(torch.nn.Linear(3, 2), torch.randn(2, 3))
        >>> report.ok, [row.name for row in report.rows]
        (True, ['input', 'weight', 'bias'])
    """
    if not isinstance(module, nn.Module):
        raise config_error("module", type(module).__name__, "Pass a torch.nn.Module.")
    if not isinstance(example_input, Tensor):
        raise config_error(
            "example_input", type(example_input).__name__, "Pass a small input tensor."
        )
    if not example_input.is_floating_point():
        raise config_error(
            "example_input", f"<{example_input.dtype} tensor>", "Pass a floating-point input."
        )
    for name, value in (("eps", eps), ("atol", atol), ("rtol", rtol)):
        positive = name == "eps"
        if not is_number(value) or not (value > 0 if positive else value >= 0):
            bound = "a number > 0" if positive else "a number >= 0"
            raise config_error(name, value, f"Pass {bound}, e.g. 1e-6.")
    if not is_int(max_entries) or max_entries < 1:
        raise config_error("max_entries", max_entries, "Pass an integer >= 1.")
    if not is_int(seed):
        raise config_error("seed", seed, "Pass an integer seed.")
    model = copy.deepcopy(module).double()
    generator = torch.Generator().manual_seed(seed)
    with evaluation_mode(model):
        x = example_input.detach().double().clone().requires_grad_(True)
        projection = torch.randn(
            _first_tensor(model(x)).shape, generator=generator, dtype=torch.float64
        )

        def objective() -> Tensor:
            return (_first_tensor(model(x)) * projection.to(x.device)).sum()

        named = [("input", x), *((n, p) for n, p in model.named_parameters() if p.requires_grad)]
        analytic = torch.autograd.grad(objective(), [t for _, t in named], allow_unused=True)
        report = GradCheckReport()
        for (name, tensor), grad in zip(named, analytic, strict=True):
            flat_grad = (
                grad.reshape(-1)
                if grad is not None
                else torch.zeros(tensor.numel(), dtype=torch.float64)
            )
            entries = (
                torch.randperm(tensor.numel(), generator=generator)[:max_entries].sort().values
            )
            numeric = torch.empty(len(entries), dtype=torch.float64)
            flat = tensor.data.view(-1)
            with torch.no_grad():
                for k, i in enumerate(entries.tolist()):
                    original = flat[i].item()
                    flat[i] = original + eps
                    plus = objective().item()
                    flat[i] = original - eps
                    minus = objective().item()
                    flat[i] = original
                    numeric[k] = (plus - minus) / (2 * eps)
            auto = flat_grad[entries].detach().cpu()
            abs_err = (auto - numeric).abs()
            rel_err = abs_err / torch.maximum(auto.abs(), numeric.abs()).clamp_min(1e-12)
            worst = int(torch.argmax(abs_err - (atol + rtol * numeric.abs())))
            report.rows.append(
                GradCheckRow(
                    name=name,
                    checked=len(entries),
                    max_abs_error=float(abs_err.max()),
                    max_rel_error=float(rel_err.max()),
                    worst_index=int(entries[worst]),
                    autograd=float(auto[worst]),
                    numeric=float(numeric[worst]),
                    ok=bool((abs_err <= atol + rtol * numeric.abs()).all()),
                )
            )
    return report


def batch_mixing(
    model: Callable[[Tensor], Any], inputs: Tensor, samples: Sequence[int] = (0, -1)
) -> dict[int, list[int]]:
    """Find samples whose output depends on *other* samples of the batch.

    For each sample ``i`` in ``samples``, back-propagates ``output[i].sum()`` to the whole
    input batch: in a model that keeps samples apart the gradient on every other sample
    is exactly zero. A reshape across the batch (``x.view(-1, ...)`` in the wrong order),
    a reduction over dim 0 or attention across the batch all show up. Normalisation
    layers must be in eval mode (train-mode BatchNorm mixes samples on purpose): call it
    inside `evaluation_mode`, as `BatchMixingCheck` does.

    Args:
        model: Callable from an input batch to an output (first tensor is used).
        inputs: A floating input batch of at least 2 samples.
        samples: Indices of the samples to check.

    Returns:
        ``{i: [j, ...]}``: for each checked sample, the other samples it depends on
        (empty lists when the model is clean). If the output's first dimension differs
        from the batch size, every checked sample maps to all others.

    Raises:
        RecipeConfigError: If the batch has fewer than 2 samples, is not floating-point,
            or an index in ``samples`` is outside it.

    Examples:
        >>> import torch
        >>> batch_mixing(torch.nn.Linear(3, 2), torch.randn(4, 3))
        {0: [], 3: []}
        >>> batch_mixing(lambda x: x - x.mean(dim=0), torch.randn(4, 3))
        {0: [1, 2, 3], 3: [0, 1, 2]}
    """
    if inputs.shape[0] < 2:
        raise config_error("inputs", f"<batch of {inputs.shape[0]}>", "Pass at least 2 samples.")
    if not inputs.is_floating_point():
        raise config_error("inputs", f"<{inputs.dtype} tensor>", "Pass a floating-point batch.")
    n = inputs.shape[0]
    outside = [i for i in samples if not -n <= i < n]
    if outside:
        raise config_error(
            "samples",
            tuple(samples),
            f"Index {outside[0]} is outside the batch of {n} samples: pass indices in "
            f"[{-n}, {n - 1}] (negative ones count from the end).",
        )
    indices = sorted({i % n for i in samples})
    with torch.inference_mode(False), torch.enable_grad():
        x = inputs.detach().clone().requires_grad_(True)
        output = _first_tensor(model(x))
        if output.shape[0] != n:
            return {i: [j for j in range(n) if j != i] for i in indices}
        found: dict[int, list[int]] = {}
        for i in indices:
            (grad,) = torch.autograd.grad(output[i].sum(), x, retain_graph=True, allow_unused=True)
            if grad is None:
                found[i] = []
                continue
            touched = grad.reshape(n, -1).abs().amax(dim=1) > 0
            found[i] = [j for j in torch.nonzero(touched).flatten().tolist() if j != i]
    return found


# Deprecated names (one release): the callback moved to a module named after it.
_MOVED = {
    "BatchMixingCheck": "lightning_recipes.gradients.batch_mixing_check",
    "BatchMixingError": "lightning_recipes.errors",
}


def __getattr__(name: str) -> Any:
    return moved_attribute(__name__, name, _MOVED)
