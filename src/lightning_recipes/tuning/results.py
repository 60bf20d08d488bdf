"""What a study leaves for a person: ``study.md``, PNG figures and ``best.yaml``."""

import copy
import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML: a dependency of jsonargparse

from lightning_recipes._optional import require
from lightning_recipes.errors import RecipeWarning
from lightning_recipes.tuning.config import apply_params
from lightning_recipes.tuning.space import resize_lists

__all__ = ["best_config", "redact", "write_results"]

_FEATURE = "The study report of lightning_recipes.tuning"
FIGURES = {
    "history": ("plot_optimization_history", "Optimisation history"),
    "importances": ("plot_param_importances", "Parameter importances"),
    "parallel": ("plot_parallel_coordinate", "Parallel coordinates"),
    "slice": ("plot_slice", "Slice plots"),
}


def redact(url: str) -> str:
    """The storage URL with its password hidden, for reports and logs.

    Args:
        url: An SQLAlchemy URL.

    Returns:
        The URL with ``***`` for the password.

    Examples:
        >>> redact("postgresql://me:secret@db:5432/optuna")
        'postgresql://me:***@db:5432/optuna'
    """
    from sqlalchemy.engine import make_url

    try:
        return str(make_url(url).render_as_string(hide_password=True))
    except Exception:  # not an SQLAlchemy URL: show nothing after the scheme
        return url.split("://", 1)[0] + "://..."


def best_config(study: Any, base: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with the best trial's parameters applied (lists resized as sampled).

    Args:
        study: A finished ``optuna.Study`` whose trials were run by `tune`.
        base: The config the study searched over.

    Returns:
        The best config.
    """
    trial = study.best_trial
    params = trial.user_attrs.get("config_params", trial.params)
    cfg = copy.deepcopy(dict(base))
    return apply_params(cfg, resize_lists(cfg, params))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return "-" if value is None else str(value)


def _figures(study: Any, out: Path) -> dict[str, str]:
    """Draw each figure to PNG; return name -> file name or the reason it is missing."""
    require("matplotlib", extra="plots", feature=_FEATURE)
    optuna = require("optuna", extra="tune", feature=_FEATURE)
    plots = require("optuna.visualization.matplotlib", extra="tune", feature=_FEATURE)
    import matplotlib.pyplot as plt

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    drawn: dict[str, str] = {}
    for key, (function, _) in FIGURES.items():
        needed = 2 if key == "importances" else 1
        if len(complete) < needed:
            drawn[key] = f"not drawn: needs at least {needed} completed trial(s)"
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                axes = getattr(plots, function)(study)
            first = axes.flat[0] if hasattr(axes, "flat") else axes
            figure = first.figure
            figure.set_size_inches(max(figure.get_size_inches()[0], 8), 5)
            figure.savefig(out / f"{key}.png", dpi=110, bbox_inches="tight")
            plt.close(figure)
            drawn[key] = f"{key}.png"
        except Exception as err:  # a figure must not lose the study's report
            warnings.warn(
                f"tune: the {key} figure could not be drawn: {err!r}", RecipeWarning, stacklevel=2
            )
            drawn[key] = f"not drawn: {err}"
    return drawn


def write_results(
    study: Any,
    out: Path,
    base: Mapping[str, Any],
    *,
    storage_url: str,
    monitor: str,
    sampler: str,
) -> dict[str, Path]:
    """Write ``study.md``, the figures and ``best.yaml`` into ``out``.

    Args:
        study: The ``optuna.Study``.
        out: The study's folder.
        base: The config searched over (for ``best.yaml``).
        storage_url: The storage URL (shown with its password hidden).
        monitor: The metric the trials were judged by.
        sampler: The sampler's name.

    Returns:
        Kind -> path of each file written.
    """
    optuna = require("optuna", extra="tune", feature=_FEATURE)
    state = optuna.trial.TrialState
    trials = study.get_trials(deepcopy=False)
    counts = {s.name: sum(t.state == s for t in trials) for s in state}
    files: dict[str, Path] = {}
    direction = study.direction.name.lower()
    lines = [
        f"# Study `{study.study_name}`",
        "",
        f"- storage: `{redact(storage_url)}`",
        f"- objective: {direction} `{monitor}` ({study.user_attrs.get('value', 'best')} value "
        "over the validation epochs of each trial)",
        f"- sampler: {sampler}",
        "- trials: " + ", ".join(f"{n} {k.lower()}" for k, n in counts.items() if n),
        "",
    ]
    complete = [t for t in trials if t.state == state.COMPLETE]
    if complete:
        best = study.best_trial
        cfg = best_config(study, base)
        header = (
            f"# Best config of study {study.study_name!r}: trial {best.number}, "
            f"{monitor} = {best.value!r}.\n# Reproduce: lightning-recipes fit -c best.yaml\n"
        )
        (out / "best.yaml").write_text(header + yaml.safe_dump(cfg, sort_keys=False))
        files["best"] = out / "best.yaml"
        lines += [
            "## Best trial",
            "",
            f"Trial {best.number}: `{monitor}` = {_fmt(best.value)}. "
            "`lightning-recipes fit -c best.yaml` trains it again.",
            "",
            "| parameter | value |",
            "|---|---|",
            *(f"| `{k}` | {_fmt(v)} |" for k, v in best.params.items()),
            "",
        ]
    else:
        lines += ["No trial has completed yet: no best config.", ""]
    names = sorted({k for t in trials for k in t.params})
    lines += [
        "## Trials",
        "",
        "| # | state | value | epochs | seconds | " + " | ".join(f"`{n}`" for n in names) + " |",
        "|---" * (5 + len(names)) + "|",
    ]
    for t in trials:
        seconds = t.duration.total_seconds() if t.duration is not None else None
        epochs = t.user_attrs.get("epochs", (t.last_step + 1) if t.last_step is not None else None)
        cells = [
            str(t.number),
            t.state.name.lower(),
            _fmt(t.value),
            _fmt(epochs),
            _fmt(seconds),
            *(_fmt(t.params.get(n)) for n in names),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    drawn = _figures(study, out)
    lines += ["## Figures", ""]
    for key, (_, title) in FIGURES.items():
        if drawn[key].endswith(".png"):
            lines += [f"### {title}", "", f"![{title}]({drawn[key]})", ""]
            files[key] = out / drawn[key]
        else:
            lines += [f"### {title}", "", f"({drawn[key]})", ""]
    lines += [
        "## Live view",
        "",
        "`optuna-dashboard` shows the same study live from its storage:",
        "",
        "```",
        f"optuna-dashboard {redact(storage_url)}",
        "```",
        "",
    ]
    (out / "study.md").write_text("\n".join(lines))
    files["report"] = out / "study.md"
    return files
