"""Reading and replacing the inputs of a training batch, for recipes that change them.

Augmentation and adversarial training both replace a batch's inputs between the transfer
to the device and ``training_step``. A list or dict batch takes a new tensor; a tuple cannot,
so its tensor is overwritten in place, which is refused when that tensor is a view of a
larger one (a slice of a dataset held in memory): writing into it would change the data.
"""

from typing import Any, Literal, overload

from torch import Tensor

from lightning_recipes.errors import RecipeConfigError, config_error

__all__ = ["batch_inputs", "replace_inputs"]


@overload
def batch_inputs(
    batch: Any, key: int | str, owner: str, *, floating: Literal[True] = True
) -> Tensor: ...


@overload
def batch_inputs(batch: Any, key: int | str, owner: str, *, floating: Literal[False]) -> Any: ...


def batch_inputs(batch: Any, key: int | str, owner: str, *, floating: bool = True) -> Any:
    """The inputs of ``batch`` at ``key`` (the batch itself for a tensor): the one lookup.

    Args:
        batch: The batch.
        key: Index (tuple/list) or key (dict) of the inputs.
        owner: The recipe asking, for the error message.
        floating: Require a floating-point tensor (to perturb or mix it); False for a
            recipe that only runs the model's forward on it (token ids pass).

    Returns:
        The inputs tensor.

    Raises:
        RecipeConfigError: If there is no floating-point tensor at ``key``.
    """
    try:
        inputs = batch if isinstance(batch, Tensor) else batch[key]
    except (KeyError, IndexError, TypeError) as err:
        raise config_error(
            "input_key",
            key,
            f"The training batch is a {type(batch).__name__} without it: pass the index "
            "(tuple/list) or key (dict) of the inputs.",
        ) from err
    if not floating:
        return inputs
    if not isinstance(inputs, Tensor) or not inputs.is_floating_point():
        what = inputs.dtype if isinstance(inputs, Tensor) else type(inputs).__name__
        raise config_error(
            "input_key",
            key,
            f"{owner} needs floating-point input tensors there, got {what}: convert the "
            "inputs to float in the dataset or collate function.",
        )
    return inputs


def replace_inputs(batch: Any, key: int | str, new: Tensor, owner: str) -> None:
    """Put ``new`` in place of the inputs: a list/dict entry, or in place in the tensor.

    Args:
        batch: The training batch (changed).
        key: Index or key of the inputs.
        new: The new inputs, same shape.
        owner: The recipe asking, for the error message.

    Raises:
        RecipeConfigError: If a tuple's inputs are a view of a larger tensor.
    """
    if isinstance(batch, list | dict):
        batch[key] = new  # type: ignore[index]
        return
    old = batch_inputs(batch, key, owner)
    if old._base is not None:  # a view: writing would change the tensor it views
        raise RecipeConfigError(
            f"{owner}: the inputs of this {type(batch).__name__} batch are a view of a larger "
            "tensor (a slice of your dataset?), and a tuple cannot take a new tensor, so "
            "changing them in place would change the data itself. Yield the batch as a list "
            "or dict, or yield a copy (the default collate does)."
        )
    old.copy_(new)
