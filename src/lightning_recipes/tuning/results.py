"""What a study leaves for a person: ``study.md``, PNG figures and ``best.yaml``."""

import copy
import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML: a dependency of jsonargparse

from lightning_recipes._core.optional import new_figure, require
from lightning_recipes.errors import RecipeWarning
from lightning_recipes.tuning.config import apply_params
from lightning_recipes.tuning.space import resize_lists
from lightning_recipes.tuning.storage import journal_path, redact_url

__all__ = [
    "best_config",
    "dashboard_target",
    "draw_figures",
    "short_name",
    "write_results",
]

_FEATURE = "The study report of lightning_recipes.tuning"
FIGURES = {
    "history": ("plot_optimization_history", "Optimisation history"),
    "importances": ("plot_param_importances", "Parameter importances"),
    "parallel": ("plot_parallel_coordinate", "Parallel coordinates"),
    "slice": ("plot_slice", "Slice plots"),
}


def dashboard_target(url: str) -> str:
    """What ``optuna-dashboard`` takes for a storage: a journal's file, else the URL redacted.

    Examples:
        >>> dashboard_target("journal:///runs/s/study.journal")
        '/runs/s/study.journal'
    """
    path = journal_path(url)
    return str(path) if path is not None else redact_url(url)


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


def short_name(key: str) -> str:
    """A config key without its ``init_args`` segments, as the figures label it.

    Examples:
        >>> short_name("model.init_args.backbone.init_args.hidden.0")
        'model.backbone.hidden.0'
    """
    return ".".join(part for part in key.split(".") if part != "init_args")


class _Axis:
    """Where one parameter's values go on a figure axis, and its tick labels.

    Args:
        distribution: The parameter's Optuna distribution; None for plain numbers (the
            objective).
        values: The values the trials took (None where a trial did not sample it).
    """

    def __init__(self, distribution: Any, values: list[Any]) -> None:
        self.choices: list[Any] | None = getattr(distribution, "choices", None)
        self.log = bool(getattr(distribution, "log", False))
        self.integer = type(distribution).__name__ == "IntDistribution"
        present = [self.position(v) for v in values if v is not None] or [0.0]
        if self.choices is not None:  # every choice has its place, sampled or not
            present = [0.0, float(len(self.choices) - 1)]
        self.low, self.high = min(present), max(present)

    def position(self, value: Any) -> float:
        """The value on a linear axis: a choice's index, or ``log10`` of a log-scaled value."""
        if self.choices is not None:
            return float(list(self.choices).index(value))
        return math.log10(value) if self.log else float(value)

    def ticks(self, most: int = 4) -> list[tuple[float, str]]:
        """At most ``most`` (position, label) pairs; a categorical axis labels every choice."""
        if self.choices is not None:
            return [(float(i), _fmt(c)) for i, c in enumerate(self.choices)]
        if self.low == self.high:
            return [(self.low, self._label(self.low))]
        if self.log:
            first, last = math.floor(self.low), math.ceil(self.high)
            for mantissas in ((1, 2, 5), (1,)):
                inside = [
                    math.log10(m) + k
                    for k in range(first, last + 1)
                    for m in mantissas
                    if self.low - 1e-9 <= math.log10(m) + k <= self.high + 1e-9
                ]
                if 2 <= len(inside) <= most:
                    return [(t, self._label(t)) for t in inside]
        return [(t, self._label(t)) for t in _linspace(self.low, self.high, 3)]

    def _label(self, position: float) -> str:
        value = 10**position if self.log else position
        return str(round(value)) if self.integer else f"{value:.3g}"


def _linspace(low: float, high: float, count: int) -> list[float]:
    return [low + (high - low) * i / (count - 1) for i in range(count)]


def _parameters(trials: list[Any]) -> dict[str, _Axis]:
    """Each sampled parameter (sorted by name) with its axis over ``trials``."""
    names = sorted({name for t in trials for name in t.params})
    axes = {}
    for name in names:
        distribution = next(t.distributions[name] for t in trials if name in t.params)
        axes[name] = _Axis(distribution, [t.params.get(name) for t in trials])
    return axes


def _draw_slices(trials: list[Any], monitor: str) -> Any:
    """One scatter of ``monitor`` against each parameter, the panels wrapped in a grid."""
    params = _parameters(trials)
    columns = min(3, len(params))
    rows = math.ceil(len(params) / columns)
    figure = new_figure(
        _FEATURE, figsize=(max(6.0, 3.3 * columns + 1.0), 2.6 * rows + 0.6), layout="constrained"
    )
    grid = figure.subplots(rows, columns, squeeze=False, sharey=True)
    numbers = [t.number for t in trials]
    points = None
    for panel, (name, axis) in zip(grid.flat, params.items(), strict=False):
        seen = [t for t in trials if name in t.params]
        points = panel.scatter(
            [axis.position(t.params[name]) for t in seen],
            [t.value for t in seen],
            c=[t.number for t in seen],
            cmap="Blues",
            vmin=min(numbers),
            vmax=max(numbers),
            edgecolors="grey",
            linewidths=0.5,
        )
        ticks = axis.ticks()
        panel.set_xticks([p for p, _ in ticks], [label for _, label in ticks])
        panel.set_xlabel(short_name(name) + (" (log)" if axis.log else ""))
        panel.margins(x=0.12)
        panel.grid(alpha=0.3)
    for panel in grid.flat[len(params) :]:
        panel.set_visible(False)
    for row in grid:
        row[0].set_ylabel(monitor)
    if points is not None:
        figure.colorbar(points, ax=grid, label="trial", shrink=0.8)
    figure.suptitle(f"{monitor} against each parameter (a point per completed trial)")
    return figure


def _draw_parallel(trials: list[Any], monitor: str, minimize: bool) -> Any:
    """Parallel coordinates, one row per parameter: each trial is a line through its values."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    params = _parameters(trials)
    # One row per axis, the objective first: (label, parameter name or None, axis).
    objective = _Axis(None, [t.value for t in trials])
    rows: list[tuple[str, str | None, _Axis]] = [(monitor, None, objective)]
    rows += [(short_name(name), name, axis) for name, axis in params.items()]
    figure = new_figure(
        _FEATURE, figsize=(8.5, max(3.5, 0.42 * len(rows) + 1.3)), layout="constrained"
    )
    ax = figure.add_subplot()
    cmap = colormaps["viridis" if minimize else "viridis_r"]  # the best trials dark
    spread = objective.high > objective.low
    norm = Normalize(objective.low, objective.high if spread else objective.low + 1)
    top = len(rows) - 1

    def place(axis: _Axis, position: float) -> float:
        span = axis.high - axis.low
        return 0.5 if span == 0 else (position - axis.low) / span

    best = min(trials, key=lambda t: t.value) if minimize else max(trials, key=lambda t: t.value)
    for trial in sorted(trials, key=lambda t: t is best):  # the best drawn last, on top
        points = [
            (
                place(axis, trial.value if name is None else axis.position(trial.params[name])),
                top - i,
            )
            for i, (_, name, axis) in enumerate(rows)
            if name is None or name in trial.params
        ]
        ax.plot(
            *zip(*points, strict=True),
            color=cmap(norm(trial.value)),
            linewidth=2.5 if trial is best else 1.0,
            alpha=1.0 if trial is best else 0.7,
            zorder=3 if trial is best else 2,
        )
    for i, (_, _, axis) in enumerate(rows):
        ax.axhline(top - i, color="0.6", linewidth=0.8, zorder=1)
        for position, label in axis.ticks():
            x = place(axis, position)
            align = "left" if x < 0.2 else "right" if x > 0.8 else "center"
            ax.annotate(
                label, (x, top - i), xytext=(0, 3), textcoords="offset points", ha=align,
                va="bottom", fontsize=8, color="0.2", zorder=4,
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none"},
            )  # fmt: skip
    ax.set_yticks(range(top, -1, -1), [label for label, _, _ in rows])
    ax.set_ylim(-0.5, top + 0.7)
    ax.set_xlim(-0.02, 1.02)
    ax.set_xticks([])
    ax.set_facecolor("white")
    ax.grid(False)
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    figure.colorbar(ScalarMappable(norm, cmap), ax=ax, label=monitor, shrink=0.8)
    ax.set_title(
        f"Parallel coordinates: each line a completed trial (bold: best, trial {best.number})"
    )
    return figure


def draw_figures(study: Any, monitor: str) -> dict[str, Any]:
    """The study's figures: name -> a matplotlib ``Figure``, or the reason it is not drawn.

    The parameter figures are drawn here (a grid of slices, parallel coordinates with one
    row per parameter) so that their labels stay readable with many parameters; the
    history and the importances are Optuna's.

    Args:
        study: The ``optuna.Study``.
        monitor: The metric the trials were judged by (the figures' value axis).

    Returns:
        Name -> figure or reason.
    """
    optuna = require("optuna", extra="tune", feature=_FEATURE)
    plots = require("optuna.visualization.matplotlib", extra="tune", feature=_FEATURE)
    style_context = require("matplotlib.style", extra="plots", feature=_FEATURE).context
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    minimize = study.direction == optuna.study.StudyDirection.MINIMIZE
    drawn: dict[str, Any] = {}
    # Optuna's figures set pyplot's style globally: keep it to this block, and ours alike.
    with style_context("ggplot"):
        for key in FIGURES:
            needed = 2 if key == "importances" else 1
            if len(complete) < needed:
                drawn[key] = f"not drawn: needs at least {needed} completed trial(s)"
                continue
            try:
                if key == "slice":
                    drawn[key] = _draw_slices(complete, monitor)
                elif key == "parallel":
                    drawn[key] = _draw_parallel(complete, monitor, minimize)
                else:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                        axes = getattr(plots, FIGURES[key][0])(study, target_name=monitor)
                    drawn[key] = _optuna_figure(axes, key)
            except Exception as err:  # a figure must not lose the study's report
                warnings.warn(
                    f"tune: the {key} figure could not be drawn: {err!r}",
                    RecipeWarning,
                    stacklevel=2,
                )
                drawn[key] = f"not drawn: {err}"
    return drawn


def _optuna_figure(ax: Any, key: str) -> Any:
    """Optuna's figure, sized and laid out so that its legend and labels fit inside."""
    figure = ax.figure
    if key == "importances":
        labels = [short_name(label.get_text()) for label in ax.get_yticklabels()]
        ax.set_yticks(ax.get_yticks(), labels)
    figure.set_size_inches(8, 4.5)
    figure.set_layout_engine("constrained")
    return figure


def _figures(study: Any, out: Path, monitor: str) -> dict[str, str]:
    """Draw each figure to PNG; return name -> file name or the reason it is missing."""
    require("matplotlib", extra="plots", feature=_FEATURE)
    import matplotlib.pyplot as plt

    saved: dict[str, str] = {}
    for key, figure in draw_figures(study, monitor).items():
        if isinstance(figure, str):
            saved[key] = figure
            continue
        figure.savefig(out / f"{key}.png", dpi=110)
        plt.close(figure)
        saved[key] = f"{key}.png"
    return saved


def write_results(
    study: Any,
    out: Path,
    base: Mapping[str, Any],
    *,
    storage_url: str,
    monitor: str,
    sampler: str,
    figures: bool = True,
    not_drawn: str | None = None,
) -> dict[str, Path]:
    """Write ``study.md``, the figures and ``best.yaml`` into ``out``.

    Called again on a stored study (``optuna.load_study``) with ``figures=True``, it draws
    the figures of a study that `tune` ran with ``figures=False``.

    Args:
        study: The ``optuna.Study``.
        out: The study's folder.
        base: The config searched over (for ``best.yaml``).
        storage_url: The storage URL (shown with its password hidden).
        monitor: The metric the trials were judged by.
        sampler: The sampler's name.
        figures: Draw the figures as PNG (a few seconds); False lists how to draw them.
        not_drawn: Why they were not drawn, for the report (default: ``figures=False``).

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
        f"- storage: `{redact_url(storage_url)}`",
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
    if figures:
        drawn = _figures(study, out, monitor)
    else:
        later = (
            f"not drawn: {not_drawn or 'the study ran with figures=False (--no-figures)'}; "
            "`lightning_recipes.tuning.write_results(..., figures=True)` on the stored study "
            "draws them"
        )
        drawn = dict.fromkeys(FIGURES, later)
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
        f"optuna-dashboard {dashboard_target(storage_url)}",
        "```",
        "",
    ]
    (out / "study.md").write_text("\n".join(lines))
    files["report"] = out / "study.md"
    return files
