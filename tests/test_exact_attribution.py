"""explain() targets and baselines, against what is written by hand."""

import pytest
import torch
from torch import nn

from lightning_recipes.attribution import explain

pytest.importorskip("captum")


def _linear() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3))


def test_a_one_element_target_tensor_is_every_inputs_target() -> None:
    model, x = _linear(), torch.randn(5, 4)
    one = explain(model, x, "saliency", target=torch.tensor([2]))
    assert torch.equal(one.target, torch.full((5,), 2))
    # Saliency of a linear model: |d logit_2 / d x| is |W[2]| for every input.
    weight = model[0].weight.detach()[2].abs()
    torch.testing.assert_close(one.attributions, weight.expand(5, 4))
    assert torch.equal(one.attributions, explain(model, x, "saliency", target=2).attributions)
