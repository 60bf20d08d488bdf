"""Build ``benchmarks/results/peers.md`` and the recipe pages' peer figures from the runs.

Every ``peers_*`` benchmark writes ``results/<name>.json`` (`publish_peers`: per-seed
values paired by position, time ratios, a verdict) and ``results/<name>.md`` (its table
and findings). This script gathers them, so ``peers.md`` is generated, never edited by
hand:

- a summary table at the top, one line per comparison: ours and the peer (mean ± std over
  seeds), the paired difference ``ours - peer`` with its std, the verdict (``level``,
  ``ahead``, ``behind``: the paired mean against twice its standard error) and the time
  ratio ours / peer; a pair whose JSON is missing reads "not run";
- then each pair's section, taken from its ``results/<name>.md`` and linked to it;
- one figure per pair, ``docs/recipes/img/peers_<name>.png``: each comparison's per-seed
  values, ours beside the peer's, and a panel of the per-seed time ratios where the pair
  has them (a row with a ``figure`` key goes to ``img/<figure>.png`` instead, so that a
  script covering two recipe pages draws one figure for each).

``make bench`` runs it last. Run alone:
``.venv/bin/python benchmarks/peers_report.py [--results DIR] [--img DIR] [--out FILE]``.
"""

import argparse
import json
import statistics
import sys
import textwrap
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS, mean_std, paired_verdict
from _peers import ratio_text

from lightning_recipes._core.tables import markdown_table

IMG = Path(__file__).resolve().parents[1] / "docs" / "recipes" / "img"

# Issue 22's pairs table, in its order: name -> (recipe, peer), for the lines of a pair not run.
PAIRS: dict[str, tuple[str, str]] = {
    "peers_mixing": (
        "MixUp, CutMix, LabelSmoothing",
        "timm `Mixup` + `SoftTargetCrossEntropy`; `F.cross_entropy(label_smoothing=)`",
    ),
    "peers_robustness": ("fgsm, pgd, AdversarialTraining", "torchattacks"),
    "peers_averaging": (
        "WeightAverage (SWA, EMA)",
        "Lightning `StochasticWeightAveraging`, `EMAWeightAveraging`",
    ),
    "peers_transfer": ("Freezer", "Lightning `BackboneFinetuning`, full fine-tune, linear probe"),
    "peers_lr_finder": ("LRFinder", "Lightning `Tuner.lr_find`"),
    "peers_observers": (
        "EarlyStopping, GradientMonitor, ActivationMonitor",
        "Lightning `EarlyStopping`, the `grad_norm` logging recipe",
    ),
    "peers_imbalance": (
        "ClassWeighting, samplers",
        "torch `WeightedRandomSampler`, imbalanced-learn",
    ),
    "peers_penalty": ("WeightPenalty", "optimizer `weight_decay`"),
    "peers_tune": ("tune", "a plain Optuna loop with `PyTorchLightningPruningCallback`"),
    "peers_cv": ("cross_validate", "scikit-learn folds by hand"),
    "peers_distillation": ("Distillation", "torchdistill `KDLoss`"),
    "peers_batch_size": (
        "GradientNoiseScale, BatchSizeFinder",
        "a steps-to-target sweep's fitted B_crit; Lightning `BatchSizeFinder`",
    ),
}
HEADERS = [
    "recipe",
    "peer",
    "metric",
    "ours",
    "peer's",
    "ours - peer (paired)",
    "verdict",
    "time ours / peer",
    "note",
]


def load(results: Path, name: str) -> dict[str, Any] | None:
    """The JSON summary of one pair, or None when it is missing or unreadable."""
    path = results / f"{name}.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    rows = data.get("rows") if isinstance(data, dict) else None
    return data if isinstance(rows, list) and rows else None


def names(results: Path) -> list[str]:
    """The known pairs in the issue's order, then any other ``peers_*`` summary found."""
    found = sorted(p.stem for p in results.glob("peers_*.json"))
    return list(PAIRS) + [n for n in found if n not in PAIRS]


def verdict_of(row: dict[str, Any]) -> str | None:
    """The row's verdict: ``paired_verdict`` on its per-seed values, as of this rule.

    A level/ahead/behind stored by an older run is recomputed (the rule may have changed
    since); any other word a script chose is kept. None without a peer value.
    """
    stored, theirs = row.get("verdict"), row.get("theirs")
    if not theirs:
        return None
    if stored and stored not in ("level", "ahead", "behind"):
        return str(stored)
    return paired_verdict(row["ours"], theirs, row.get("higher_is_better", True))


def time_text(row: dict[str, Any]) -> str:
    wall, cpu = row.get("time_ratio"), row.get("time_ratio_cpu")
    if not wall:
        return "—"
    return f"{ratio_text(wall)} wall, {ratio_text(cpu)} CPU" if cpu else ratio_text(wall)


def summary_line(row: dict[str, Any]) -> list[str]:
    """One line of the summary table."""
    ours, theirs = row["ours"], row.get("theirs")
    higher = row.get("higher_is_better", True)
    metric = row["metric"] + ("" if higher else " (lower is better)")
    note = row.get("note") or ""
    if not theirs:
        cells = [row["recipe"], row["peer"], metric, mean_std(ours), "—", "—", "no peer value"]
        return [*cells, "—", note]
    diffs = [a - b for a, b in zip(ours, theirs, strict=True)]
    return [
        row["recipe"],
        row["peer"],
        metric,
        mean_std(ours),
        mean_std(theirs),
        mean_std(diffs, sign=True),
        f"**{verdict_of(row)}**",
        time_text(row),
        note,
    ]


def section(results: Path, name: str, data: dict[str, Any] | None) -> str:
    """A pair's section: its results/<name>.md with headings one level down, linked."""
    recipe, peer = PAIRS.get(name, (name, ""))
    md = results / f"{name}.md"
    head = f"## {recipe}" + (f" vs {peer}" if peer else "")
    links = f"Script `benchmarks/{name}.py`, results [{name}.md]({name}.md)"
    if data is None:
        links += (
            f"; no `{name}.json`, so not in the summary above: this section is from an earlier run"
        )
    else:
        links += f"; measured {data.get('measured', '?')}: `{data.get('command', '?')}`"
    if not md.exists():
        return f"{head}\n\n{links}.\n\nNot run: no `{name}.md`.\n"
    body, fenced = [], False
    for line in md.read_text().strip().splitlines():
        fenced ^= line.startswith("```")
        body.append("##" + line if line.startswith("#") and not fenced else line)
    return f"{head}\n\n{links}.\n\n" + "\n".join(body) + "\n"


def report(results: Path) -> str:
    """The text of peers.md from the JSON and markdown files in ``results``."""
    rows: list[list[str]] = []
    sections: list[str] = []
    for name in names(results):
        data = load(results, name)
        if data is None:
            recipe, peer = PAIRS.get(name, (name, ""))
            rows.append([recipe, peer, "—", "—", "—", "—", f"not run (`{name}.py`)", "—", ""])
        else:
            rows += [summary_line(row) for row in data["rows"]]
        if data is not None or (results / f"{name}.md").exists():
            sections.append(section(results, name, data))
    return (
        "# Every recipe beside the peer it replaces\n\n"
        "Generated by `benchmarks/peers_report.py` from the `peers_*.json` and `peers_*.md` "
        "files the `peers_*` benchmarks write (`make bench` runs them all, then this); do "
        "not edit by hand. Same model, data, seeds, epochs and budget on both sides of "
        "each line, the variants interleaved in one process with their order rotated. "
        "Mean ± std over seeds (over studies or rounds where a line says so); the paired "
        "difference is ours - peer, seed by seed; the verdict is **level** when that "
        "difference is within two standard errors of its mean (about a 95% interval over "
        "the seeds), else **ahead** or **behind** (by the metric's direction). Peers that "
        "cannot live in the library's venv (timm, torchattacks) run in "
        "`benchmarks/.peers-venv` (`make peers-env`), both sides of every ratio in one "
        "process. Each pair's figure (per-seed values, ours beside the peer's, and the time "
        "ratios): `docs/recipes/img/<name>.png`, or one per recipe page where a pair spans "
        "two.\n\n"
        f"{markdown_table(HEADERS, rows)}\n" + "\n".join(sections)
    )


def short(text: str, width: int = 34) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text


def draw(name: str, rows: list[dict[str, Any]], path: Path) -> Path:
    """One figure: per-seed values of each comparison, ours beside the peer's, and the ratios."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with_time = [row for row in rows if row.get("time_ratio")]
    unique = len({row["recipe"] for row in with_time}) == len(
        {(row["recipe"], row["peer"]) for row in with_time}
    )  # the recipe alone names each ratio: a shorter label
    timed: dict[str, list[float]] = {}
    for row in with_time:
        label = row["recipe"] if unique else f"{row['recipe']} / {row['peer']}"
        timed.setdefault(label, row["time_ratio"])
    panels = len(rows) + (1 if timed else 0)
    cols = min(3, panels)
    lines = -(-panels // cols)
    fig, axes = plt.subplots(lines, cols, figsize=(4.6 * cols, 3.6 * lines), squeeze=False)
    flat = list(axes.flat)
    for ax, row in zip(flat, rows, strict=False):
        ours, theirs = row["ours"], row.get("theirs")
        seeds = range(1, len(ours) + 1)
        if theirs:
            ax.plot(seeds, theirs, "s", mfc="none", mec="tab:orange", ms=9, label="peer")
            for s, a, b in zip(seeds, ours, theirs, strict=True):
                ax.plot([s, s], [a, b], color="0.7", lw=1, zorder=0)
        ax.plot(seeds, ours, "o", color="tab:blue", ms=5, label="ours")
        verdict = verdict_of(row)
        title = short(f"{row['recipe']} vs {row['peer']}", 44)
        ax.set_title(title + (f"\n({verdict})" if verdict else "\n(no peer value)"), fontsize=9)
        direction = "" if row.get("higher_is_better", True) else " (lower is better)"
        ax.set_ylabel(short(row["metric"] + direction, 30), fontsize=9)
        ax.set_xlabel("paired run (one seed each)", fontsize=9)
        ax.set_xticks(list(seeds)[:: max(1, len(ours) // 10)])
        ax.tick_params(labelsize=8)
        ax.legend(fontsize=8, loc="best")
    if timed:
        ax = flat[len(rows)]
        labels = list(timed)
        for i, label in enumerate(labels):
            values = timed[label]
            ax.plot(values, [i] * len(values), "o", color="tab:blue", alpha=0.6, ms=5)
            ax.plot([statistics.mean(values)], [i], "|", color="black", ms=16, mew=2)
        ax.axvline(1.0, color="tab:orange", lw=1, ls="--")
        ax.set_yticks(range(len(labels)))
        ax.set_yticklabels([short(label, 30) for label in labels], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("time ours / peer, per seed (bar: mean)", fontsize=9)
        ax.set_title("time ratio (1 = as fast as the peer)", fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
    for ax in flat[panels:]:
        ax.axis("off")
    recipes = dict.fromkeys(row["recipe"].split("(")[0].strip() for row in rows)
    peers = dict.fromkeys(row["peer"].split(",")[0].split("(")[0].strip() for row in rows)
    title = f"{', '.join(recipes)} beside {', '.join(peers)}".replace("`", "")
    fig.suptitle(short(title, 110), fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def build(results: Path = RESULTS, img: Path = IMG, out: Path | None = None) -> list[Path]:
    """Write peers.md (``out``, default ``results/peers.md``) and one figure per pair run."""
    out = out or results / "peers.md"
    out.write_text(report(results))
    written = [out]
    for name in names(results):
        data = load(results, name)
        if data is None or data.get("own_figure"):
            continue  # a script that draws its page's figure itself (peers_transfer: vs shots)
        figures: dict[str, list[dict[str, Any]]] = {}
        for row in data["rows"]:  # a row's "figure" key sends it to its own page's figure
            figures.setdefault(row.get("figure") or name, []).append(row)
        for stem, rows in figures.items():
            written.append(draw(name, rows, img / f"{stem}.png"))
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--img", type=Path, default=IMG)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    for path in build(args.results, args.img, args.out):
        print(f"written to {path}")


if __name__ == "__main__":
    main()
