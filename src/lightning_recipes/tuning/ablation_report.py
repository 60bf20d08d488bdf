"""What `ablate` writes: ``ablation.md``, ``.png`` and ``.json``, and ``recommended.yaml``."""

import json
from collections.abc import Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import yaml  # type: ignore[import-untyped]  # PyYAML: a dependency of jsonargparse

from lightning_recipes._core.optional import new_figure
from lightning_recipes._core.tables import markdown_table

if TYPE_CHECKING:
    from lightning_recipes.tuning.ablate import Ablation

__all__ = ["write_ablation"]

_WHAT = {
    "leave-one-out": "all the factors on, minus this one: what it adds in this company",
    "add-one-in": "none of the factors, plus this one: what it does alone",
    "factorial": "the mean over every configuration with it, minus without it",
}


def _advice(result: "Ablation") -> list[str]:
    helps = [e.factor for e in result.effects if e.verdict == "helps"]
    hurts = [e.factor for e in result.effects if e.verdict == "hurts"]
    noise = [e.factor for e in result.effects if e.verdict == "within the noise"]
    lines = []
    if helps:
        lines.append(f"- Keep {', '.join(helps)}: helps beyond the seed noise.")
    if hurts:
        lines.append(
            f"- Drop {', '.join(hurts)}: hurts beyond the seed noise here "
            "(`recommended.yaml` is the config without them)."
        )
    if noise:
        lines.append(
            f"- {', '.join(noise)}: no effect distinguishable from the seed noise with "
            f"{len(result.seeds)} seed(s); more seeds would tell, or keep them for what else "
            "they do (a monitor's plots, a report)."
        )
    return lines


_MEMORY = {
    "cuda": "Peak memory is the device memory the run's tensors took at most.",
    "host": (
        "Peak memory is the process's resident memory at its highest during the run, "
        "Python's and the libraries' baseline included: a ratio near 1 means the recipe "
        "adds little beside that baseline."
    ),
}


def _cost(result: "Ablation") -> str:
    extra, runs = result.overhead
    if runs <= 0:
        return "This call trained nothing: every run was in the study already."
    return (
        f"This call trained {runs:.1f} s of runs and spent {extra:.1f} s besides "
        f"({100 * extra / (extra + runs):.1f} %: checking every configuration, the study, "
        "this report)."
    )


def write_ablation(result: "Ablation", recommended: Mapping[str, Any], mode: str) -> None:
    """Write the report, the figure, the JSON and ``recommended.yaml`` into ``result.out``.

    Args:
        result: The ablation.
        recommended: The config without the factors that hurt beyond the noise.
        mode: ``"min"`` or ``"max"``: the monitored metric's direction.
    """
    out = result.out
    out.mkdir(parents=True, exist_ok=True)
    rows = [
        [
            e.factor,
            f"{e.mean:+.4g} ± {e.std:.2g}",
            f"[{e.low:+.3g}, {e.high:+.3g}]",
            f"**{e.verdict}**",
            f"{result.time_ratio[e.factor]:.2f}x",
            *([f"{result.cpu_ratio[e.factor]:.2f}x"] if result.cpu_ratio else []),
            *([f"{result.memory_ratio[e.factor]:.2f}x"] if result.memory_ratio else []),
        ]
        for e in result.effects
    ]
    headers = ["factor", "effect (mean ± std)", "95 % interval", "verdict"]
    headers.append("time with / without")
    if result.cpu_ratio:
        headers.append("CPU time with / without")
    if result.memory_ratio:
        headers.append("peak memory with / without")
    table = markdown_table(headers, rows)
    direction = "lower" if mode == "min" else "higher"
    text = [
        "# Which recipes help: the ablation",
        "",
        f"Design **{result.design}** ({_WHAT[result.design]}), seeds {result.seeds}, paired "
        f"by seed. An effect is the change of the monitored value it causes, signed so that "
        f"positive helps ({direction} is better); it is called a win or a loss only when its "
        "95 % interval (Student's t over the seeds) excludes 0.",
        "",
        table,
        "",
        "## What to do",
        "",
        *_advice(result),
        "",
        "![effects](ablation.png)",
        "",
        _cost(result),
        *(["", _MEMORY[result.memory_kind]] if result.memory_kind in _MEMORY else []),
        "",
        "## Every run",
        "",
        markdown_table(
            [
                "configuration (factors on)",
                *[f"seed {s}" for s in result.seeds],
                "mean s",
                *(["peak MB"] if result.memory else []),
            ],
            [
                [
                    " + ".join(on) or "none",
                    *[f"{v:.4g}" for v in values],
                    f"{sum(result.seconds[on]) / len(result.seconds[on]):.1f}",
                    *([f"{max(result.memory[on]) / 2**20:.0f}"] if on in result.memory else []),
                ]
                for on, values in result.runs.items()
            ],
        ),
        "",
    ]
    (out / "ablation.md").write_text("\n".join(text))
    (out / "ablation.json").write_text(_json(result))
    (out / "recommended.yaml").write_text(_yaml(recommended))
    _figure(result, direction).savefig(out / "ablation.png", dpi=120)


def _figure(result: "Ablation", direction: str) -> Any:
    """Each factor's effect with its 95 % interval, most helpful at the top."""
    effects = list(reversed(result.effects))
    figure = new_figure("ablate's figure", figsize=(6.4, 1.2 + 0.45 * len(effects)))
    axes = figure.add_subplot()
    colors = {"helps": "tab:green", "hurts": "tab:red", "within the noise": "tab:gray"}
    positions = list(range(len(effects)))
    for y, effect in zip(positions, effects, strict=True):
        finite = effect.low > float("-inf")
        axes.errorbar(
            effect.mean,
            y,
            xerr=[[effect.mean - effect.low], [effect.high - effect.mean]] if finite else None,
            fmt="o",
            color=colors[effect.verdict],
            capsize=4,
        )
    axes.axvline(0.0, color="black", linewidth=0.8)
    axes.set_yticks(positions, [e.factor for e in effects])
    metric = result.monitor or "the monitored value"
    axes.set_xlabel(f"effect on {metric} (positive helps: {direction} is better)")
    axes.set_title(f"{result.design}, {len(result.seeds)} seeds: mean and 95 % interval")
    figure.tight_layout()
    return figure


def _json(result: "Ablation") -> str:
    """The ablation as JSON (configurations as ``" + "``-joined factor names)."""
    return json.dumps(
        {
            "design": result.design,
            "seeds": result.seeds,
            "factors": [asdict(f) for f in result.factors],
            "runs": {" + ".join(on) or "none": v for on, v in result.runs.items()},
            "seconds": {" + ".join(on) or "none": v for on, v in result.seconds.items()},
            "effects": [asdict(e) for e in result.effects],
            "time_ratio": result.time_ratio,
            "peak_memory": {" + ".join(on) or "none": v for on, v in result.memory.items()},
            "memory_ratio": result.memory_ratio,
            "cpu_ratio": result.cpu_ratio,
            "memory_kind": result.memory_kind,
            "overhead_seconds": result.overhead[0],
            "run_seconds": result.overhead[1],
        },
        indent=2,
    )


def _yaml(config: Mapping[str, Any]) -> str:
    """``recommended.yaml``'s text."""
    return str(yaml.safe_dump(dict(config), sort_keys=False))
