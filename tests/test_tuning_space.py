"""Search spaces and config paths: parsing, conditional sampling, grids, bad input."""

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_recipes.errors import RecipeConfigError
from lightning_recipes.tuning.config import apply_params, config_keys, load_config, parse_overrides
from lightning_recipes.tuning.config_parser import expand_config
from lightning_recipes.tuning.space import SearchSpace, load_space, resize_lists

optuna = pytest.importorskip("optuna")
optuna.logging.set_verbosity(optuna.logging.WARNING)

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "configs" / "digits.yaml"
SPACE = ROOT / "examples" / "configs" / "digits_space.yaml"
HIDDEN = "model.init_args.backbone.init_args.hidden"
DROPOUT = "model.init_args.backbone.init_args.dropout"


def _trials(space: SearchSpace, n: int, seed: int = 0) -> list[dict[str, Any]]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        out.append(space.sample(trial))
        study.tell(trial, 0.0)
    return out


# ---------------------------------------------------------------- config paths


def test_config_keys_cover_lists_and_callbacks() -> None:
    full = expand_config(load_config(CONFIG))
    keys = config_keys(full)
    for key in (
        "model.init_args.lr",
        f"{HIDDEN}.1",
        "data.init_args.batch_size",
        "trainer.callbacks.0.init_args.monitor",
        "trainer.callbacks.0.init_args.save_top_k",  # a default, not written in the file
        "model.init_args.weight_decay",  # likewise
    ):
        assert key in keys


def test_apply_params_copies_sets_appends_and_creates() -> None:
    base = {"m": {"hidden": [8, 4]}, "t": [{"a": 1}]}
    new = apply_params(base, {"m.hidden.2": 2, "t.0.a": 5, "x.y": 1, "m.lr": 0.5})
    assert new == {"m": {"hidden": [8, 4, 2], "lr": 0.5}, "t": [{"a": 5}], "x": {"y": 1}}
    assert base == {"m": {"hidden": [8, 4]}, "t": [{"a": 1}]}  # untouched
    with pytest.raises(RecipeConfigError, match="past the end"):
        apply_params(base, {"m.hidden.5": 1})
    with pytest.raises(RecipeConfigError, match="not a section"):
        apply_params(base, {"m.hidden.0.x": 1})


def test_overrides_parse_as_yaml_and_apply() -> None:
    assert parse_overrides(["--a.b=5", "--c", "[1, 2]", "d=null"]) == {
        "a.b": 5,
        "c": [1, 2],
        "d": None,
    }
    cfg = load_config(CONFIG, ["--trainer.max_epochs=3", f"--{HIDDEN}=[8, 8, 8]"])
    assert cfg["trainer"]["max_epochs"] == 3
    assert cfg["model"]["init_args"]["backbone"]["init_args"]["hidden"] == [8, 8, 8]
    for bad in (["--trainer.max_epochs"], ["--trainer.callbacks+=x"], ["nonsense"]):
        with pytest.raises(RecipeConfigError, match="overrides"):
            parse_overrides(bad)


# ---------------------------------------------------------------- parsing (property-based)


@settings(max_examples=60, deadline=None)
@given(
    low=st.floats(1e-6, 10.0),
    width=st.floats(1e-3, 100.0),
    log=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_float_ranges_sample_inside(low: float, width: float, log: bool, seed: int) -> None:
    space = load_space({"p": {"type": "float", "low": low, "high": low + width, "log": log}})
    for params in _trials(space, 3, seed):
        assert low <= params["p"] <= low + width


@settings(max_examples=60, deadline=None)
@given(low=st.integers(-50, 50), count=st.integers(1, 12), step=st.integers(1, 7))
def test_int_grids_are_inside_and_on_step(low: int, count: int, step: int) -> None:
    width = count * step
    space = load_space({"p": {"type": "int", "low": low, "high": low + width, "step": step}})
    values = space.grid()["p"]
    assert values[0] == low
    assert all(low <= v <= low + width for v in values)
    assert all((v - low) % step == 0 for v in values)
    assert len(values) == width // step + 1
    for params in _trials(space, 3):
        assert params["p"] in values


@settings(max_examples=40, deadline=None)
@given(
    choices=st.lists(st.integers(-5, 5) | st.text(max_size=3), min_size=1, max_size=5, unique=True)
)
def test_categoricals_sample_their_choices(choices: list[Any]) -> None:
    space = load_space({"p": {"type": "categorical", "choices": choices}})
    assert space.grid() == {"p": choices}
    assert all(params["p"] in choices for params in _trials(space, 4))


def test_yaml_text_file_and_mapping_give_the_same_space(tmp_path: Path) -> None:
    text = "a.b: {type: float, low: 0.1, high: 1.0}\nc: {type: categorical, choices: [1, 2]}\n"
    path = tmp_path / "space.yaml"
    path.write_text(text)
    spaces = [load_space(text), load_space(path), load_space(str(path))]
    assert spaces[0] == spaces[1] == spaces[2]
    assert spaces[0].names == ["a.b", "c"]


# ---------------------------------------------------------------- conditional sampling


def test_depth_two_or_three_samples_the_third_layer_only_with_three() -> None:
    space = load_space(SPACE)
    base = load_config(CONFIG)
    full = expand_config(base)
    space.check(full, config_keys(full))
    seen = set()
    for params in _trials(space, 40):
        cfg = apply_params(base, {})
        cfg = apply_params(cfg, resize_lists(cfg, params))
        mlp = cfg["model"]["init_args"]["backbone"]["init_args"]
        depth = len(mlp["hidden"])
        seen.add(depth)
        assert len(mlp["dropout"]) == depth  # the scalar dropout became one per layer
        assert (f"{HIDDEN}.2" in params) == (depth == 3)
        assert (f"{DROPOUT}.2" in params) == (depth == 3)
        assert mlp["hidden"] == [params[f"{HIDDEN}.{i}"] for i in range(depth)]
        assert all(d in {0.0, 0.1, 0.2, 0.3, 0.4, 0.5} for d in mlp["dropout"])
    assert seen == {2, 3}


def test_conditions_follow_values_and_are_sampled_after_their_parent() -> None:
    space = load_space(
        {
            "momentum": {"type": "float", "low": 0.5, "high": 0.99, "condition": {"opt": "sgd"}},
            "nesterov": {
                "type": "categorical",
                "choices": [True, False],
                "condition": {"momentum_on": [True]},
            },
            "momentum_on": {
                "type": "categorical",
                "choices": [True, False],
                "virtual": True,
                "condition": {"opt": "sgd"},
            },
            "opt": {"type": "categorical", "choices": ["sgd", "adamw"], "virtual": True},
        }
    )
    assert space.names.index("opt") < space.names.index("momentum")
    assert space.names.index("momentum_on") < space.names.index("nesterov")
    for params in _trials(space, 40):
        assert "opt" not in params  # virtual parameters are not config values
        assert ("nesterov" in params) <= ("momentum" in params)  # both need opt == "sgd"


def test_tpe_with_a_seed_is_reproducible_on_the_conditional_space() -> None:
    from lightning_recipes.tuning.search import make_sampler

    space = load_space(SPACE)

    def run() -> list[dict[str, Any]]:
        study = optuna.create_study(sampler=make_sampler("tpe", seed=3, space=space))
        study.optimize(lambda t: float(len(space.sample(t))), n_trials=14)
        return [t.params for t in study.trials]

    first, second = run(), run()
    assert first == second
    assert {p["depth"] for p in first} == {2, 3}


def test_grid_sampler_enumerates_a_finite_space() -> None:
    from lightning_recipes.tuning.search import make_sampler

    space = load_space(
        {
            "a": {"type": "categorical", "choices": [1, 2, 3]},
            "b": {"type": "float", "low": 0.0, "high": 0.2, "step": 0.1},
            "c": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True, "grid": [1e-4, 1e-3]},
        }
    )
    assert space.grid() == {"a": [1, 2, 3], "b": [0.0, 0.1, 0.2], "c": [1e-4, 1e-3]}
    study = optuna.create_study(sampler=make_sampler("grid", seed=0, space=space))
    study.optimize(lambda t: 0.0 if space.sample(t) else 1.0, n_trials=18)
    combos = {(t.params["a"], round(t.params["b"], 6), t.params["c"]) for t in study.trials}
    assert len(combos) == 18


# ---------------------------------------------------------------- bad input

BAD_SPACES: list[tuple[Any, str]] = [
    ({}, "space"),
    ([1, 2], "space"),
    ({"a": 3}, "space['a']"),
    ({"a": {"type": "normal"}}, "space['a'].type"),
    ({"a": {"type": "float", "low": 1.0}}, "space['a']"),
    ({"a": {"type": "float", "low": 1.0, "high": 0.5}}, "space['a'].high"),
    ({"a": {"type": "float", "low": 0.0, "high": 1.0, "log": True}}, "space['a'].low"),
    ({"a": {"type": "float", "low": 0.1, "high": 1.0, "step": -1}}, "space['a'].step"),
    (
        {"a": {"type": "float", "low": 0.1, "high": 1.0, "step": 0.1, "log": True}},
        "space['a'].step",
    ),
    ({"a": {"type": "int", "low": 0.5, "high": 3}}, "space['a'].low"),
    ({"a": {"type": "float", "low": "x", "high": 3}}, "space['a'].low"),
    ({"a": {"type": "categorical", "choices": []}}, "space['a'].choices"),
    ({"a": {"type": "categorical", "choices": [1, 1]}}, "space['a'].choices"),
    ({"a": {"type": "categorical", "choices": [[1, 2], [3]]}}, "space['a'].choices"),
    ({"a": {"type": "float", "low": 0, "high": 1, "lo": 2}}, "space['a']"),
    ({"a": {"type": "float", "low": 0, "high": 1, "condition": {"b": 1}}}, "space['a'].condition"),
    ({"a": {"type": "float", "low": 0, "high": 1, "condition": {"a": 1}}}, "space['a'].condition"),
    (
        {
            "a": {"type": "categorical", "choices": [1, 2], "condition": {"b": 1}},
            "b": {"type": "categorical", "choices": [1, 2], "condition": {"a": 1}},
        },
        "condition",
    ),
    (
        {
            "a": {"type": "categorical", "choices": [1, 2]},
            "b": {"type": "float", "low": 0, "high": 1, "condition": {"a": 7}},
        },
        "space['b'].condition",
    ),
    ({"d": {"type": "categorical", "choices": [0, 2], "length_of": ["x"]}}, "space['d'].length_of"),
    ({"d": {"type": "float", "low": 1, "high": 2, "length_of": ["x"]}}, "space['d'].length_of"),
    ({"a": {"type": "float", "low": 0, "high": 1, "grid": [2.0]}}, "space['a'].grid"),
    ({"a": {"type": "float", "low": 0, "high": 1, "virtual": "yes"}}, "space['a'].virtual"),
    ({"a": {"type": "int", "low": 0, "high": 10, "step": 3}}, "space['a'].step"),
]


@pytest.mark.parametrize(("raw", "argument"), BAD_SPACES)
def test_bad_spaces_are_refused_naming_the_parameter(raw: Any, argument: str) -> None:
    with pytest.raises(RecipeConfigError) as info:
        load_space(raw)
    assert argument in str(info.value)


def test_unknown_keys_list_the_valid_keys_and_suggest_the_closest() -> None:
    full = expand_config(load_config(CONFIG))
    keys = config_keys(full)
    space = load_space({"model.init_args.lrr": {"type": "float", "low": 0.1, "high": 1}})
    with pytest.raises(RecipeConfigError) as info:
        space.check(full, keys)
    message = str(info.value)
    assert "model.init_args.lrr" in message
    assert "Did you mean 'model.init_args.lr'" in message
    assert "data.init_args.batch_size" in message  # the list of valid keys


def test_a_list_length_without_items_for_every_length_is_refused() -> None:
    full = expand_config(load_config(CONFIG))
    space = load_space(
        {
            "depth": {"type": "categorical", "choices": [2, 3], "length_of": [HIDDEN]},
            f"{HIDDEN}.0": {"type": "int", "low": 8, "high": 64},
        }
    )
    with pytest.raises(RecipeConfigError, match=rf"add {HIDDEN}\.2"):
        space.check(full, config_keys(full))


def test_a_grid_over_a_continuous_range_is_refused() -> None:
    space = load_space({"a": {"type": "float", "low": 1e-4, "high": 0.1, "log": True}})
    with pytest.raises(RecipeConfigError, match=r"space\['a'\].*step"):
        space.grid()


def test_expanding_a_config_does_not_touch_the_global_rng() -> None:
    import torch

    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    expand_config(load_config(CONFIG))  # the config says seed_everything: 0
    assert torch.equal(torch.rand(1), expected)


def test_every_sampler_and_pruner_name_builds_optunas_class() -> None:
    from lightning_recipes.tuning.search import make_pruner, make_sampler

    space = load_space({"a": {"type": "categorical", "choices": [1, 2]}})
    kinds = {
        name: type(make_sampler(name, seed=0, space=space)).__name__
        for name in ("grid", "random", "tpe", "gp")
    }
    assert kinds == {
        "grid": "GridSampler",
        "random": "RandomSampler",
        "tpe": "TPESampler",
        "gp": "GPSampler",
    }
    tpe = make_sampler("tpe", seed=0, space=space)
    assert tpe._multivariate
    assert tpe._group
    assert type(make_pruner("median")).__name__ == "MedianPruner"
    hyperband = make_pruner("hyperband", max_epochs=9)
    assert type(hyperband).__name__ == "HyperbandPruner"
    assert hyperband._max_resource == 9
    assert type(make_pruner("none")).__name__ == "NopPruner"
    with pytest.raises(RecipeConfigError, match="sampler"):
        make_sampler("cmaes", seed=0, space=space)
    with pytest.raises(RecipeConfigError, match="sampler"):
        make_sampler("grid", seed=0, space=None)
    with pytest.raises(RecipeConfigError, match="pruner"):
        make_pruner("asha")


def test_mlp_takes_one_dropout_per_layer_for_a_tuned_depth() -> None:
    from torch import nn

    from lightning_recipes.modules import MLP

    net = MLP(64, hidden=(16, 8, 4), dropout=[0.1, 0.0, 0.3])
    assert [m.p for m in net if isinstance(m, nn.Dropout)] == [0.1, 0.3]
    assert [m.p for m in MLP(64, hidden=(16, 8), dropout=0.2) if isinstance(m, nn.Dropout)] == [
        0.2,
        0.2,
    ]
    for bad in ([0.1], [0.1, 1.5]):
        with pytest.raises(RecipeConfigError, match="dropout"):
            MLP(64, hidden=(16, 8), dropout=bad)
