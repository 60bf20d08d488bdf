"""AdversarialTraining and RobustnessEvaluation under a real 2-process DDP run."""

from collections.abc import Callable
from typing import Any

import pytest
import torch

from lightning_recipes.modules import MLP, Classifier
from lightning_recipes.robustness import correct_counts, robust_accuracy


@pytest.mark.ddp
def test_ranks_perturb_apart_keep_one_model_and_evaluate_exactly_over_both(
    ddp: Callable[..., list[dict[str, Any]]],
) -> None:
    rank0, rank1 = ddp("robustness_fit")
    # Training: the same batches on both ranks (no distributed sampler)...
    assert torch.equal(rank0["clean"], rank1["clean"])
    assert rank0["batches"] == rank1["batches"] == 5
    assert rank0["hooks"] == rank1["hooks"] == 0  # removed after each step
    for rank in (rank0, rank1):
        delta = rank["fed"] - rank["clean"]
        assert float(delta.abs().max()) <= 0.1 + 1e-6
        assert float(delta.abs().mean()) > 0.02
    # ...perturbed differently (the random start is seeded by rank), yet one model.
    assert not torch.equal(rank0["fed"], rank1["fed"])
    for key, value in rank0["weights"].items():
        assert torch.equal(value, rank1["weights"][key]), key

    # Evaluation: both ranks report the same accuracies, exactly those of the union of
    # the samples the two ranks attacked, recomputed here in one process.
    assert rank0["pgd"] == rank1["pgd"]
    assert rank0["fgsm"] == rank1["fgsm"]
    model = Classifier(MLP(64, hidden=(32,)), num_classes=10)
    model.load_state_dict(rank0["weights"])
    model.eval()
    epsilons = [0.0, 0.05, 0.1]
    settings: dict[str, Any] = {"steps": 3, "clip": (0.0, 1.0)}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the ranks ran (OMP_NUM_THREADS=1): the same arithmetic
    try:
        # PGD's random start is drawn per rank (seed 0 on each): add each rank's counts.
        counts = sum(
            correct_counts(model, r["x"], r["y"], epsilons, "pgd",
                           generator=torch.Generator().manual_seed(0), **settings)
            for r in (rank0, rank1)
        )  # fmt: skip
        # FGSM has no randomness: one pass over the union of the two ranks' samples.
        union_x = torch.cat([rank0["x"], rank1["x"]])
        union_y = torch.cat([rank0["y"], rank1["y"]])
        fgsm = robust_accuracy(model, union_x, union_y, epsilons, "fgsm", **settings)
        local = robust_accuracy(model, rank0["x"], rank0["y"], epsilons, "fgsm", **settings)
    finally:
        torch.set_num_threads(threads)
    assert list(rank0["pgd"]) == epsilons
    # (The callback divides in float32: equal to 1e-6, far below one sample in 96.)
    expected = {e: float(c) / 96 for e, c in zip(epsilons, counts.tolist(), strict=True)}
    assert rank0["pgd"] == pytest.approx(expected, abs=1e-6)
    assert rank0["fgsm"] == pytest.approx(fgsm, abs=1e-6)
    assert local != pytest.approx(fgsm, abs=1e-6)  # rank 0's sample alone gives other numbers
    assert rank0["pgd"][0.0] > 0.3  # a (little) trained model: chance is 0.1
    assert 0 < rank0["pgd"][0.1] < rank0["pgd"][0.0]
