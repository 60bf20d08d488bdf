"""Draw the benchmark figures shown on the recipe pages from the results tables.

Reads the ``mean ± std`` cells of ``benchmarks/results/{regularization,augmentation,
demo_recipes,tuning,ensembles,robustness}.md`` (written by the benchmark scripts) and draws
bar charts and curves with error bars into ``docs/recipes/img/`` and ``docs/img/``. No
training: a second.

Run: ``.venv/bin/python benchmarks/results_figures.py``.
"""

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CELL = re.compile(r"^\s*([0-9.]+)\s*±\s*([0-9.]+)\s*$")


def tables(path: Path) -> list[list[list[str]]]:
    """Every Markdown table of a file, as rows of cells (header row first)."""
    found: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in path.read_text().splitlines():
        if line.startswith("|") and not set(line) <= set("|-: "):
            current.append([cell.strip() for cell in line.strip("|").split("|")])
        elif not line.startswith("|") and current:
            found.append(current)
            current = []
    if current:
        found.append(current)
    return found


def mean_std(cells: list[str]) -> tuple[list[float], list[float]]:
    """The means and standard deviations of ``mean ± std`` cells (bold allowed)."""
    matches = [CELL.match(cell.replace("**", "")) for cell in cells]
    assert all(matches), cells
    return (
        [float(m.group(1)) for m in matches if m],
        [float(m.group(2)) for m in matches if m],
    )


def save(figure: plt.Figure, out: Path, dpi: int = 110) -> None:
    """Write the figure (creating its folder) and close it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=dpi, bbox_inches="tight")
    plt.close(figure)
    print(f"written to {out}")


def bars(
    labels: list[str], cells: list[str], title: str, xlabel: str, out: Path, baseline: str = ""
) -> None:
    """A horizontal bar chart of ``mean ± std`` cells, the baseline's mean as a line."""
    means, stds = mean_std(cells)
    figure, ax = plt.subplots(figsize=(7, 0.38 * len(labels) + 1.4))
    ax.barh(range(len(labels)), means, xerr=stds, color="C0", alpha=0.8, capsize=3)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    low = min(m - s for m, s in zip(means, stds, strict=True))
    ax.set_xlim(max(0.0, low - 0.03), min(1.0, max(means) + max(stds) + 0.02))
    if baseline in labels:
        ax.axvline(means[labels.index(baseline)], color="C3", linestyle="--", label=baseline)
        ax.legend(loc="best")
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    save(figure, out)


def robustness_curves(path: Path, out: Path) -> None:
    """Accuracy against the PGD radius, one line (with error bars) per training method.

    Reads results/robustness.md: one panel per "dataset, training ε" row group; the x
    values are 0 (clean), ε/2, ε and 2ε.
    """
    rows = tables(path)[0][1:]
    groups = list(dict.fromkeys(r[0] for r in rows))
    figure, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.6), squeeze=False)
    for ax, group in zip(axes[0], groups, strict=True):
        eps = float(group.rsplit("=", 1)[1])
        xs = [0.0, eps / 2, eps, 2 * eps]
        for i, row in enumerate(r for r in rows if r[0] == group):
            means, stds = mean_std(row[2:6])
            ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, color=f"C{i}", label=row[1])
        ax.axvline(eps, color="grey", linestyle=":", linewidth=1)
        ax.set_xticks(xs, [f"{x:g}" for x in xs])
        ax.set_ylim(0, 1.02)
        units = "pixels in [0, 1]" if group.startswith("digits") else "standard deviations"
        ax.set_xlabel(f"PGD-20 radius ε (L-inf, {units})")
        ax.set_ylabel("test accuracy (mean ± std)")
        ax.set_title(f"{group.split(',')[0]}, trained at ε = {eps:g}")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", title="training")
    figure.suptitle("Accuracy under attack by training method (3 seeds)")
    figure.tight_layout()
    save(figure, out)


def main() -> None:
    img = ROOT / "docs" / "recipes" / "img"
    reg = tables(RESULTS / "regularization.md")[0][1:]
    bars(
        [r[0] for r in reg],
        [r[1] for r in reg],
        "Regularization, digits with 20 images per class (wide MLP, 3 seeds)",
        "test accuracy (mean ± std)",
        img / "regularization.png",
        baseline="nothing",
    )
    aug = tables(RESULTS / "augmentation.md")[0][1:]
    bars(
        [f"{r[0]}: {r[1]}" for r in aug],
        [r[2] for r in aug],
        "Augmentation, digits with about 20 images per class (3 seeds)",
        "test accuracy (mean ± std)",
        img / "augmentation.png",
    )
    demo = tables(RESULTS / "demo_recipes.md")[0][1:]
    bars(
        [r[0] for r in demo],
        [r[1] for r in demo],
        "The demo: each recipe alone and all together (3 seeds)",
        "test accuracy (mean ± std)",
        ROOT / "docs" / "img" / "demo_recipes.png",
        baseline="class-weighting",
    )
    tuning = tables(RESULTS / "tuning.md")[0][1:]
    bars(
        [f"{r[0]}: {r[1]}" for r in tuning],
        [r[4] for r in tuning],
        "Best validation accuracy after 16 trials (3 study seeds)",
        "validation accuracy (mean ± std)",
        ROOT / "docs" / "img" / "tuning_samplers.png",
    )
    ensembles(RESULTS / "ensembles.md", img / "ensembles.png")
    robustness_curves(RESULTS / "robustness.md", img / "robustness.png")


def ensembles(results: Path, out: Path) -> None:
    """Test accuracy and NLL per method, one row of panels per data set, error bars."""
    rows = tables(results)[0]
    header, body = rows[0], rows[1:]
    acc_col, nll_col = header.index("test accuracy"), header.index("test NLL")
    sets = list(dict.fromkeys(r[0] for r in body))
    figure, axes = plt.subplots(
        len(sets), 2, figsize=(11, 2.9 * len(sets)), sharey="row", squeeze=False
    )
    for i, name in enumerate(sets):
        cells = [r for r in body if r[0] == name]
        labels = [r[1] for r in cells]
        for j, (col, xlabel) in enumerate(
            ((acc_col, "test accuracy (higher is better)"), (nll_col, "test NLL (lower is better)"))
        ):
            means, stds = mean_std([r[col] for r in cells])
            ax = axes[i][j]
            colors = ["C3" if label == "single model" else "C0" for label in labels]
            ax.barh(range(len(labels)), means, xerr=stds, color=colors, alpha=0.8, capsize=3)
            ax.set_yticks(range(len(labels)), labels)
            if j == 0:  # the panels of a row share the y axis: invert it once
                ax.invert_yaxis()
            ax.axvline(means[labels.index("single model")], color="C3", linestyle="--")
            low = min(m - s for m, s in zip(means, stds, strict=True))
            high = max(m + s for m, s in zip(means, stds, strict=True))
            pad = 0.05 * (high - low)
            ax.set_xlim(max(0.0, low - pad), high + pad)
            ax.set_xlabel(xlabel)
            ax.set_title(f"{name}: {xlabel.split(' (')[0].removeprefix('test ')}")
            ax.grid(axis="x", alpha=0.3)
    figure.suptitle("Ensembles and weight averaging, mean ± std over 3 seeds (red: single model)")
    figure.tight_layout()
    save(figure, out, dpi=100)


if __name__ == "__main__":
    main()
