"""The demo as a LightningCLI config: ``lightning-recipes demo --print-config``.

`demo_config` writes the run `run_demo` trains (same data, backbone, schedule, recipes
and seed) as a config that ``lightning-recipes fit -c`` trains and ``lightning-recipes
ablate -c`` ablates. Its split follows ``seed_everything`` (``data.init_args.seed: null``),
so every seed of an ablation has its own split, as every seed of the demo has.
"""

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from lightning_recipes.data.bundled import BundledDataModule
from lightning_recipes.demo_options import DEMO_DATA, DemoData
from lightning_recipes.demo_recipes import DEMO_RECIPES, recipe_specs, snapshot_cycle
from lightning_recipes.demo_side_runs import PRETRAIN_EPOCHS, _pretrain
from lightning_recipes.errors import choice_error, config_error
from lightning_recipes.modules import MLP

__all__ = ["WarmStartedMLP", "demo_config"]


class WarmStartedMLP(MLP):
    """An `MLP` pretrained on a datamodule's training split when it is built.

    The ``freeze`` recipe of the demo freezes a backbone that already knows something: the
    demo has no second dataset, so its source task is the training split itself under a
    separate head, discarded afterwards (a warm start). Built in a config, the pretraining
    runs where the demo runs it: after the backbone's initialisation, before the head's.

    Args:
        in_features: Input features.
        hidden: Widths of the hidden layers.
        dropout: Dropout after each hidden layer.
        data: The datamodule whose training split is the source task.
        epochs: Epochs of pretraining.
        class_weighting: Pretrain with balanced class weights (as the target task will).

    Example:
        >>> from lightning_recipes.data import DigitsDataModule
        >>> net = WarmStartedMLP(64, (16,), 0.0, DigitsDataModule(), epochs=1)  # doctest: +SKIP
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        dropout: float,
        data: BundledDataModule,
        epochs: int = PRETRAIN_EPOCHS,
        class_weighting: bool = False,
    ) -> None:
        super().__init__(in_features, hidden=hidden, dropout=dropout)
        if epochs < 1:
            raise config_error("epochs", epochs, "Pretrain for at least one epoch.")
        _pretrain(self, data, epochs, False, class_weighting)


def _yaml_values(value: Any) -> Any:
    """Tuples as lists, recursively (YAML has no tuples; LightningCLI converts them back)."""
    if isinstance(value, tuple | list):
        return [_yaml_values(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _yaml_values(v) for k, v in value.items()}
    return value


def demo_config(
    recipes: Sequence[str] = (),
    *,
    data: DemoData = "digits",
    max_epochs: int = 15,
    batch_size: int = 64,
    lr: float = 3e-3,
    imbalance: dict[int, float] | None = None,
    seed: int = 0,
    model: Literal["mlp"] = "mlp",
) -> dict[str, Any]:
    """The LightningCLI config of the demo run with ``recipes`` (MLP backbone).

    Args:
        recipes: Recipes from `DEMO_RECIPES`, as ``lightning-recipes demo --recipes``.
        data: ``"digits"`` or ``"mnist1d"``.
        max_epochs: Training epochs.
        batch_size: Batch size.
        lr: Peak learning rate.
        imbalance: ``{class_id: fraction}`` kept of those classes in the training split.
        seed: ``seed_everything``; the split follows it.
        model: Only ``"mlp"``: the config form builds the MLP demo.

    Returns:
        The config, ready for ``yaml.safe_dump`` or `lightning_recipes.tuning.ablate`.

    Example:
        >>> cfg = demo_config(["class-weighting", "mixup"], imbalance={3: 0.1})
        >>> [c["class_path"] for c in cfg["trainer"]["callbacks"]]
        ['lightning_recipes.imbalance.ClassWeighting', 'lightning_recipes.augmentation.MixUp']
    """
    if model != "mlp":
        raise choice_error("model", model, ("mlp",))
    if data not in DEMO_DATA:
        raise choice_error("data", data, DEMO_DATA)
    unknown = [r for r in recipes if r not in DEMO_RECIPES]
    if unknown:
        raise choice_error("recipes", unknown[0], DEMO_RECIPES)
    datamodule: dict[str, Any] = {
        "class_path": "lightning_recipes.data."
        + ("Mnist1dDataModule" if data == "mnist1d" else "DigitsDataModule"),
        "init_args": {"batch_size": batch_size, "imbalance": imbalance, "seed": None},
    }
    if data == "digits":
        datamodule["init_args"]["layout"] = "flat"
    mlp = {"in_features": 40 if data == "mnist1d" else 64, "hidden": [128, 64], "dropout": 0.1}
    backbone: dict[str, Any] = {"class_path": "lightning_recipes.modules.MLP", "init_args": mlp}
    if "freeze" in recipes:
        backbone = {
            "class_path": "lightning_recipes.demo_config.WarmStartedMLP",
            "init_args": {
                **mlp,
                "data": datamodule,
                "epochs": PRETRAIN_EPOCHS,
                "class_weighting": "class-weighting" in recipes,
            },
        }
    snapshots = "snapshot-ensemble" in recipes
    classifier: dict[str, Any] = {
        "backbone": backbone,
        "num_classes": 10,
        "lr": lr,
        "scheduler": "cosine_restarts" if snapshots else "onecycle",
    }
    if snapshots:
        classifier["scheduler_options"] = {"cycle_epochs": snapshot_cycle(max_epochs)}
    callbacks = [
        {"class_path": path, "init_args": args}
        for _, path, args in recipe_specs(recipes, max_epochs, "flat", data)
    ]
    config: dict[str, Any] = _yaml_values(
        {
            "seed_everything": seed,
            "trainer": {
                "max_epochs": max_epochs,
                "accelerator": "cpu",
                "devices": 1,
                "log_every_n_steps": 5,
                "callbacks": callbacks,
            },
            "model": {
                "class_path": "lightning_recipes.modules.Classifier",
                "init_args": classifier,
            },
            "data": datamodule,
        }
    )
    return config
