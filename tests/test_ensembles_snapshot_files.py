"""SnapshotEnsemble(save_dir=...): snapshots as files, resumable, bounded, loadable."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch import Trainer, seed_everything
from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_recipes.data import DigitsDataModule
from lightning_recipes.ensembles import SnapshotEnsemble
from lightning_recipes.errors import RecipeConfigError, RecipeWarning
from tests.test_ensembles import CYCLE, MAX_EPOCHS, Recorder, SnapNet


def _fit(
    make_trainer: Callable[..., Trainer],
    callbacks: list[Any],
    max_epochs: int = MAX_EPOCHS,
    **kwargs: Any,
) -> SnapNet:
    seed_everything(0)
    model = SnapNet()
    trainer = make_trainer(max_epochs=max_epochs, callbacks=callbacks, **kwargs)
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=64))
    return model


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _load(path: Path | str) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)  # type: ignore[no-any-return]


def test_files_hold_the_snapshots_and_give_the_in_memory_ensemble(
    make_trainer: Callable[..., Trainer], tmp_path: Path
) -> None:
    folder = tmp_path / "snaps" / "nested"  # created on the first snapshot
    recorder = Recorder()
    # Two instances in one run (distinct state keys): one in memory, one on disk.
    in_memory = SnapshotEnsemble(cycle_epochs=CYCLE, max_snapshots=3)
    on_disk = SnapshotEnsemble(cycle_epochs=CYCLE, save_dir=str(folder))
    model = _fit(make_trainer, [in_memory, on_disk, recorder])
    assert on_disk.snapshot_epochs == in_memory.snapshot_epochs == [1, 3, 5]
    assert _names(folder) == [f"snapshot-epoch={e}.pt" for e in (1, 3, 5)]  # no partial file
    assert on_disk.snapshot_paths == [str((folder / n).resolve()) for n in _names(folder)]
    assert on_disk.snapshots == []  # nothing held in memory
    for epoch, path in zip(on_disk.snapshot_epochs, on_disk.snapshot_paths, strict=True):
        state = _load(path)
        assert state.keys() == model.state_dict().keys()  # BatchNorm buffers included
        for name, value in state.items():
            torch.testing.assert_close(value, recorder.weights[epoch][name], rtol=0, atol=0)
    # The callback's state names the files and holds no tensor.
    state = on_disk.state_dict()
    assert state == {
        "snapshots": [],
        "snapshot_epochs": [1, 3, 5],
        "snapshot_paths": on_disk.snapshot_paths,
    }
    # The ensemble built from the files is the in-memory ensemble.
    x = torch.rand(16, 64)
    with torch.no_grad():
        torch.testing.assert_close(
            on_disk.ensemble(model)(x), in_memory.ensemble(model)(x), rtol=0, atol=0
        )
    assert "as files in" in on_disk.run_summary().facts["kept"]
    # A file that is gone fails at ensemble(), naming it.
    Path(on_disk.snapshot_paths[1]).unlink()
    with pytest.raises(RecipeConfigError, match=r"snapshot-epoch=3\.pt"):
        on_disk.ensemble(model)


def test_max_snapshots_deletes_the_dropped_files(
    make_trainer: Callable[..., Trainer], tmp_path: Path
) -> None:
    folder = tmp_path / "snaps"
    snap = SnapshotEnsemble(cycle_epochs=CYCLE, max_snapshots=2, save_dir=str(folder))
    _fit(make_trainer, [snap])
    assert snap.snapshot_epochs == [3, 5]
    assert _names(folder) == ["snapshot-epoch=3.pt", "snapshot-epoch=5.pt"]
    assert len(snap.ensemble(SnapNet()).members) == 2


def test_resume_keeps_the_files_and_ends_with_the_same_snapshots(
    make_trainer: Callable[..., Trainer], tmp_path: Path
) -> None:
    full_dir, run_dir = tmp_path / "full", tmp_path / "run"
    full = SnapshotEnsemble(cycle_epochs=CYCLE, save_dir=str(full_dir))
    _fit(make_trainer, [full])
    # A run interrupted after epoch 2 (0-based): one snapshot file, a checkpoint naming it.
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1, every_n_epochs=1)
    first = SnapshotEnsemble(cycle_epochs=CYCLE, save_dir=str(run_dir))
    _fit(make_trainer, [first, checkpoint], max_epochs=3, enable_checkpointing=True)
    assert _names(run_dir) == ["snapshot-epoch=1.pt"]
    kept = run_dir / "snapshot-epoch=1.pt"
    stamp = kept.stat().st_mtime_ns
    ckpt = tmp_path / "ckpt" / "epoch=2-step=60.ckpt"
    saved = torch.load(ckpt, weights_only=False)["callbacks"][first.state_key]
    assert saved["snapshot_paths"] == [str(kept.resolve())]
    assert saved["snapshots"] == []

    seed_everything(0)
    resumed = SnapshotEnsemble(cycle_epochs=CYCLE, save_dir=str(run_dir))
    trainer = make_trainer(max_epochs=MAX_EPOCHS, callbacks=[resumed])
    trainer.fit(SnapNet(), datamodule=DigitsDataModule(batch_size=64), ckpt_path=ckpt)
    assert resumed.snapshot_epochs == full.snapshot_epochs == [1, 3, 5]
    assert kept.stat().st_mtime_ns == stamp  # not re-written
    assert resumed.snapshot_paths == [str((run_dir / n).resolve()) for n in _names(full_dir)]
    assert _names(run_dir) == _names(full_dir)
    for name in _names(full_dir):
        a, b = _load(run_dir / name), _load(full_dir / name)
        for key in a:
            torch.testing.assert_close(a[key], b[key])

    # Resuming from a checkpoint whose file is gone fails before training, naming it.
    kept.unlink()
    seed_everything(0)
    again = SnapshotEnsemble(cycle_epochs=CYCLE, save_dir=str(run_dir))
    trainer = make_trainer(max_epochs=MAX_EPOCHS, callbacks=[again])
    with pytest.raises(RecipeConfigError, match=r"snapshot-epoch=1\.pt"):
        trainer.fit(SnapNet(), datamodule=DigitsDataModule(batch_size=64), ckpt_path=ckpt)
    # A checkpoint of files cannot be resumed in memory, nor the other way round.
    with pytest.raises(RecipeConfigError, match="save_dir"):
        SnapshotEnsemble(cycle_epochs=CYCLE).load_state_dict(saved)
    in_memory = {"snapshots": [{"w": torch.zeros(1)}], "snapshot_epochs": [1]}
    with pytest.raises(RecipeConfigError, match="save_dir=None"):
        SnapshotEnsemble(cycle_epochs=CYCLE, save_dir=str(run_dir)).load_state_dict(in_memory)


def test_files_of_another_run_are_overwritten_with_a_warning(
    make_trainer: Callable[..., Trainer], tmp_path: Path
) -> None:
    folder = tmp_path / "snaps"
    folder.mkdir()
    (folder / "snapshot-epoch=1.pt").write_bytes(b"stale")
    snap = SnapshotEnsemble(cycle_epochs=CYCLE, save_dir=str(folder))
    with pytest.warns(RecipeWarning, match="another run"):
        _fit(make_trainer, [snap])
    assert _load(folder / "snapshot-epoch=1.pt").keys() == SnapNet().state_dict().keys()


def test_save_dir_bad_inputs(tmp_path: Path) -> None:
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    for bad in ("", 3, a_file, str(a_file)):
        with pytest.raises(RecipeConfigError, match="save_dir"):
            SnapshotEnsemble(cycle_epochs=2, save_dir=bad)  # type: ignore[arg-type]
    with pytest.raises(RecipeConfigError, match="save_dir="):
        SnapshotEnsemble(cycle_epochs=2).snapshot_path(1)
    # A pathlib.Path is accepted and kept as a string (YAML configs give strings).
    assert SnapshotEnsemble(cycle_epochs=2, save_dir=tmp_path / "new").save_dir == str(  # type: ignore[arg-type]
        tmp_path / "new"
    )
