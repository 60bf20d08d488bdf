"""Where `Distillation`'s teacher comes from: a module, a ``class_path``, or a checkpoint.

`check_teacher` validates the spec at construction (a path that exists, a class that
imports and is an ``nn.Module``); `build_teacher` makes the module at setup. A teacher
built from a ``class_path`` is initialised under a fixed seed (0) with the global random
state restored afterwards, so every rank and every resumed run build the same one and
training's random numbers do not move; its weights come from ``teacher`` when that is a
checkpoint path.
"""

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningModule
from torch import nn

from lightning_recipes.errors import RecipeConfigError, config_error

__all__ = ["TeacherClass", "TeacherSpec", "build_teacher", "check_teacher", "describe_teacher"]

TeacherSpec = str | Path | dict[str, Any] | nn.Module
"""A module, a LightningCLI-style ``{"class_path": ..., "init_args": {...}}``, or the path
of a checkpoint (a Lightning checkpoint, or a plain ``state_dict`` file)."""

TeacherClass = str | dict[str, Any] | None
"""The teacher's class for a checkpoint path: an import path or a ``class_path`` dict."""

_INIT_SEED = 0


def _import_class(path: Any, argument: str) -> type[nn.Module]:
    if not isinstance(path, str) or "." not in path:
        raise config_error(
            argument, path, "Pass the import path of an nn.Module class, e.g. 'my_pkg.TeacherNet'."
        )
    module_name, _, name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as err:
        raise config_error(argument, path, f"It does not import ({err}).") from err
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise config_error(argument, path, "It is not an nn.Module class.")
    return cls


def _class_and_args(spec: Any, argument: str) -> tuple[type[nn.Module], dict[str, Any]]:
    """The class and keyword arguments of a ``class_path`` spec (a dict or a string)."""
    if isinstance(spec, str):
        return _import_class(spec, argument), {}
    extra = set(spec) - {"class_path", "init_args"}
    init_args = spec.get("init_args") or {}
    if extra or "class_path" not in spec or not isinstance(init_args, Mapping):
        raise config_error(
            argument,
            spec,
            "Pass {'class_path': 'pkg.Class', 'init_args': {...}} (LightningCLI's form).",
        )
    return _import_class(spec["class_path"], argument), dict(init_args)


def check_teacher(teacher: Any, teacher_class: Any) -> None:
    """Validate the teacher's spec at construction.

    Raises:
        RecipeConfigError: For a path that does not exist, a class that does not import or
            is no ``nn.Module``, a malformed ``class_path`` dict, or ``teacher_class``
            beside a teacher that is not a path.
    """
    if isinstance(teacher, str | Path):
        if not Path(teacher).is_file():
            raise config_error(
                "teacher",
                str(teacher),
                "No such file: pass the path of the teacher's checkpoint, a module, or "
                "{'class_path': ..., 'init_args': ...}.",
            )
        if teacher_class is not None:
            _class_and_args(teacher_class, "teacher_class")
        return
    if teacher_class is not None:
        raise config_error(
            "teacher_class",
            teacher_class,
            "It names the class of a checkpoint's teacher: pass it only with teacher=<path>.",
        )
    if isinstance(teacher, Mapping):
        _class_and_args(teacher, "teacher")
    elif not isinstance(teacher, nn.Module):
        raise config_error(
            "teacher",
            teacher,
            "Pass an nn.Module, a checkpoint path, or {'class_path': ..., 'init_args': ...}.",
        )


def _seeded_build(cls: type[nn.Module], init_args: dict[str, Any]) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_INIT_SEED)
        return cls(**init_args)


def _from_checkpoint(path: Path, teacher_class: TeacherClass) -> nn.Module:
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    lightning = isinstance(checkpoint, dict) and "state_dict" in checkpoint
    hparams = checkpoint.get("hyper_parameters") or {} if lightning else {}
    spec: Any = teacher_class if teacher_class is not None else hparams.get("_class_path")
    if spec is None:
        raise RecipeConfigError(
            f"Distillation: the checkpoint {str(path)!r} does not say which class the teacher "
            "is (it has no LightningCLI '_class_path'). Pass teacher_class='pkg.TeacherClass' "
            "(a LightningModule saved with save_hyperparameters()) or teacher_class="
            "{'class_path': ..., 'init_args': {...}} to build it before loading the weights."
        )
    cls, init_args = _class_and_args(spec, "teacher_class")
    if issubclass(cls, LightningModule) and lightning and not init_args:
        return cls.load_from_checkpoint(path, map_location="cpu")
    module = _seeded_build(cls, init_args)
    state = checkpoint["state_dict"] if lightning else checkpoint
    module.load_state_dict(state)
    return module


def build_teacher(teacher: TeacherSpec, teacher_class: TeacherClass = None) -> nn.Module:
    """The teacher module of a spec (checked by `check_teacher`), on the CPU.

    Args:
        teacher: A module (returned as it is), a ``class_path`` dict (built under a fixed
            seed), or a checkpoint path.
        teacher_class: For a checkpoint path: the class, when the checkpoint does not name
            it. A ``LightningModule`` class given by its import path is loaded with its
            ``load_from_checkpoint``; otherwise the class is built from ``init_args``
            and the checkpoint's ``state_dict`` loaded into it.

    Returns:
        The teacher.

    Examples:
        >>> net = build_teacher({"class_path": "torch.nn.Linear",
        ...                      "init_args": {"in_features": 4, "out_features": 3}})
        >>> net.weight.shape
        torch.Size([3, 4])
    """
    if isinstance(teacher, nn.Module):
        return teacher
    if isinstance(teacher, Mapping):
        return _seeded_build(*_class_and_args(teacher, "teacher"))
    return _from_checkpoint(Path(teacher), teacher_class)


def describe_teacher(teacher: TeacherSpec) -> str:
    """A short description of the spec, for the run report."""
    if isinstance(teacher, nn.Module):
        return type(teacher).__name__
    if isinstance(teacher, Mapping):
        return str(teacher.get("class_path"))
    return str(teacher)
