"""The study's figures are readable at their saved size: bounded shape, slices in a grid,
no text cut by the figure's edge, no two texts on top of each other."""

import random
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from lightning_recipes.tuning.results import draw_figures, short_name, write_results

optuna = pytest.importorskip("optuna")
pytest.importorskip("matplotlib")
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.text import Text  # noqa: E402

F = optuna.distributions.FloatDistribution
I = optuna.distributions.IntDistribution  # noqa: E741
C = optuna.distributions.CategoricalDistribution
NET = "model.init_args.backbone.init_args."
BASE = {
    "model": {
        "init_args": {
            "lr": 1e-3,
            "optimizer": "adamw",
            "backbone": {"init_args": {"hidden": [64, 32], "dropout": [0.1, 0.1]}},
        }
    },
    "data": {"init_args": {"batch_size": 64}},
}


def _space(depth: int) -> dict[str, Any]:
    """The example digits space: ten parameters, two of them only when depth is 3."""
    space = {
        "depth": C([2, 3]),
        NET + "hidden.0": I(32, 256, log=True),
        NET + "hidden.1": I(16, 128, log=True),
        NET + "dropout.0": F(0.0, 0.5, step=0.1),
        NET + "dropout.1": F(0.0, 0.5, step=0.1),
        "model.init_args.lr": F(1e-4, 3e-2, log=True),
        "model.init_args.optimizer": C(["adamw", "sgd"]),
        "data.init_args.batch_size": C([32, 64, 128]),
    }
    if depth == 3:
        space |= {NET + "hidden.2": I(16, 128, log=True), NET + "dropout.2": F(0.0, 0.5, step=0.1)}
    return space


def _study(trials: int = 12) -> Any:
    rng = random.Random(0)
    study = optuna.create_study(direction="minimize")
    for _ in range(trials):
        depth = rng.choice([2, 3])
        space = _space(depth)
        params: dict[str, Any] = {"depth": depth}
        for name, dist in space.items():
            if isinstance(dist, C) and name != "depth":
                params[name] = rng.choice(dist.choices)
            elif isinstance(dist, I):
                params[name] = rng.randint(dist.low, dist.high)
            elif isinstance(dist, F):
                low, high = (-4.0, -1.6) if dist.log else (dist.low, dist.high)
                value = rng.uniform(low, high)
                params[name] = 10**value if dist.log else round(value, 1)
        trial = optuna.trial.create_trial(
            params=params, distributions=space, value=rng.uniform(0.2, 2.3)
        )
        study.add_trial(trial)
    return study


def _drawn_texts(figure: Any) -> list[tuple[str, Any]]:
    """(text, window bbox) of every text the saved image shows."""
    renderer = FigureCanvasAgg(figure).get_renderer()  # the renderer savefig uses for PNG
    figure.draw(renderer)
    ticks: dict[int, bool] = {}
    for ax in figure.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                shown = low - 1e-9 <= tick.get_loc() <= high + 1e-9
                for label in (tick.label1, tick.label2):
                    ticks[id(label)] = shown
    texts = []
    for text in figure.findobj(Text):
        if not text.get_visible() or not text.get_text().strip() or not ticks.get(id(text), True):
            continue
        if any(not ax.get_visible() for ax in figure.axes if text in ax.findobj(Text)):
            continue
        texts.append((text.get_text(), text.get_window_extent(renderer)))
    return texts


@pytest.fixture(scope="module")
def figures() -> dict[str, Any]:
    drawn = draw_figures(_study(), "val_loss")
    assert all(not isinstance(f, str) for f in drawn.values()), drawn
    return drawn


def _assert_readable(figure: Any) -> None:
    width, height = figure.get_size_inches()
    assert 1 / 2.5 <= width / height <= 2.5
    texts = _drawn_texts(figure)
    edge = figure.bbox
    cut = [t for t, box in texts if not (edge.x0 - 1 <= box.x0 and box.x1 <= edge.x1 + 1)]
    cut += [t for t, box in texts if not (edge.y0 - 1 <= box.y0 and box.y1 <= edge.y1 + 1)]
    assert cut == []
    overlapping = [
        (a, b) for (a, box_a), (b, box_b) in combinations(texts, 2) if box_a.overlaps(box_b)
    ]
    assert overlapping == []


@pytest.mark.parametrize("name", ["history", "importances", "parallel", "slice"])
def test_no_text_is_cut_or_covers_another(figures: dict[str, Any], name: str) -> None:
    assert len(_drawn_texts(figures[name])) > 10
    _assert_readable(figures[name])


def test_a_study_of_one_trial_is_drawn_readably() -> None:
    study = optuna.create_study(direction="maximize")
    space = {"model.init_args.lr": F(1e-4, 1e-1, log=True), "batch_size": C([32, 64, 128])}
    params = {"model.init_args.lr": 0.01, "batch_size": 64}
    study.add_trial(optuna.trial.create_trial(params=params, distributions=space, value=0.9))
    drawn = draw_figures(study, "val_acc")
    assert drawn["importances"] == "not drawn: needs at least 2 completed trial(s)"
    for name in ("history", "parallel", "slice"):
        _assert_readable(drawn[name])
    shown = {text for text, _ in _drawn_texts(drawn["parallel"])}
    assert {"32", "64", "128", "0.01", "model.lr", "val_acc"} <= shown  # every choice has a place


def test_slices_are_wrapped_into_a_grid(figures: dict[str, Any]) -> None:
    axes = figures["slice"].axes
    panels = [ax for ax in axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
    assert len(panels) == 10  # one per parameter
    columns = {round(ax.get_position().x0, 3) for ax in panels}
    rows = {round(ax.get_position().y0, 3) for ax in panels}
    assert (len(columns), len(rows)) == (3, 4)
    labels = {ax.get_xlabel() for ax in panels}
    assert "model.backbone.hidden.2 (log)" in labels  # short names, the scale said


def test_every_saved_figure_has_a_bounded_shape(tmp_path: Path) -> None:
    from PIL import Image

    files = write_results(
        _study(), tmp_path, BASE, storage_url="sqlite:///s.db", monitor="val_loss", sampler="tpe"
    )
    for name in ("history", "importances", "parallel", "slice"):
        width, height = Image.open(files[name]).size
        assert 1 / 2.5 <= width / height <= 2.5, (name, width, height)
        assert max(width, height) <= 1600, (name, width, height)


def test_short_name_drops_init_args() -> None:
    assert short_name("model.init_args.backbone.init_args.hidden.0") == "model.backbone.hidden.0"
    assert short_name("depth") == "depth"


def test_drawing_leaves_the_users_matplotlib_style_alone() -> None:
    import matplotlib

    before = dict(matplotlib.rcParams)
    draw_figures(_study(trials=3), "val_loss")  # Optuna's figures set the ggplot style
    assert dict(matplotlib.rcParams) == before
