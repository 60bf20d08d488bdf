"""A LightningModule that logs a scripted ``val_loss`` per epoch (for exact-value tests)."""

import torch
from lightning.pytorch import LightningModule
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset


class Scripted(LightningModule):
    """Logs ``values[current_epoch]`` as ``val_loss``; its weights never change (lr 0)."""

    def __init__(self, values: list[float]) -> None:
        super().__init__()
        self.layer = nn.Linear(1, 1)
        self.values = values

    def training_step(self, batch: list[Tensor], batch_idx: int) -> Tensor:
        return self.layer(batch[0]).sum()

    def validation_step(self, batch: list[Tensor], batch_idx: int) -> None:
        self.log("val_loss", self.values[self.current_epoch])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)


def one_batch() -> DataLoader[tuple[Tensor, ...]]:
    """One batch of two zero samples, for training and validation alike."""
    return DataLoader(TensorDataset(torch.zeros(2, 1)), batch_size=2)
