"""What the recipes share, each concept once: the internals no recipe package owns.

- `trainer`: the boundary with Lightning's Trainer (the only place that reads its private
  attributes, each with the reason), rank-zero helpers; `collectives`: reduce, gather,
  broadcast between ranks.
- `contract`: what each recipe declares it touches, and the run summary it reports.
- `recipe`: `Recipe`, the base of the callbacks: identity (``state_key``), refused
  strategies, ``run_summary``.
- `batch` and `labels`: where the inputs and the labels are in a batch.
- `loss` and `loss_path`: the module's loss, and the one path through which the loss
  recipes edit it (`docs/combining.md`, rule 6).
- `optim`: optimizers; `param_groups`: the no-decay parameter groups.
- `selection`: modules and parameters chosen by layer type and name pattern.
- `module_modes`: train/eval modes changed for a while, each submodule's given back.
- `deprecation`: renamed arguments that keep working one release.
- `rng`: private, resumable generators.
- `modes`: train/eval modes with their restoration.
- `validate`: argument checks; `optional`: optional imports; `tables`: text tables.

No module here imports a recipe package.
"""
