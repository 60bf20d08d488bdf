"""The training loss path: the one place where loss recipes change the training loss.

Loss recipes (``ClassWeighting``, ``MixUp``, ``CutMix``, ``LabelSmoothing``) never replace
the user's loss. They tell the module's `LossPath` what to do to the current training
step's loss (`LossEdit`): class weights and logit adjustment's per-class offset (for the
whole fit), mixed targets and smoothing (for one batch). Two doors lead to the same edit,
applied by one function, `edited_loss`:

1. **The functional door** (zero edits to the module): a ``TorchFunctionMode`` active only
   around the training step sees every call of ``F.cross_entropy``, ``F.nll_loss``,
   ``F.binary_cross_entropy_with_logits`` and ``F.binary_cross_entropy``. That includes the
   calls that ``nn.CrossEntropyLoss``, ``nn.NLLLoss``, ``nn.BCEWithLogitsLoss`` and
   ``nn.BCELoss`` make inside their ``forward``, whether the module holds the loss as an
   attribute (``self.loss_fn``) or builds one in ``training_step``. A call is edited when
   its target is the batch's labels, or a tensor derived from them by a dtype or shape
   change (``y.float()``, ``y.long()``, ``y.view(-1, 1)``, ``y.unsqueeze(1)``,
   ``F.one_hot(y)``, ...), and the module is in training mode. Any other call (an
   auxiliary loss, a distillation term, an attack run in eval mode) is left alone.
2. **The module door**: a loss module whose math is not one of those functions (the
   library's ``FocalLoss``) gets a forward hook that applies the same edit through its own
   ``forward``.

The mode costs every other torch call of the step a trip through Python (~1-8 us each:
~0.1 ms on a small CNN's step). So it checks a step, and the steps after it may skip it:

- **labels steps**: when every call the mode edited in the checked step had the batch's
  labels themselves as target (no derived labels such as ``y.float()``, no other loss on
  them), and the batch is a list or a dict, the other steps of the epoch put a view of
  the labels that is a tensor subclass (`_Labels`, torch's ``__torch_function__``
  protocol) in the batch for the training step: only calls that touch the labels reach
  Python, and the loss calls among them are edited by the same `loss_call`, bit for bit.
  The batch gets its own labels back before the backward pass;
- **buffer-only steps**: class weights alone, held by the loss object (``self.loss_fn``),
  need neither once a step showed every call passing them.

The first step of every epoch is checked again; a labels step that edits another number
of calls than the checked one makes the next step a checked one, and one that edits none
raises, as any step does. torch's functions are never replaced (no monkey-patching).

The order is the contract's (``docs/combining.md``, rule 6): the target's mix terms first
(MixUp and CutMix compose), then smoothing of the mixed target, every term computed with
the class weights; last, distillation (``Distillation``, `distilled`) mixes that loss with
the teacher's soft-target term, ``(1 - alpha) * loss + alpha * T^2 * KL``, the teacher's
logits computed on the step's final (mixed, attacked) inputs and neither weighted nor
mixed again. Validation, test and predict never see an edit (the mode is entered at
``on_train_batch_start`` and left before the backward pass), and a training step in which
an edit was due but no call matched raises `RecipeConfigError` naming what was looked for.

Under ``torch.compile`` the mode sees the loss call when the loss is computed outside the
compiled region (``self.model = torch.compile(model)``, the usual pattern); a compiled
region that itself calls the loss is traced with the mode active and must not graph-break
on it (tested in ``tests/test_loss_path.py``).
"""

from lightning_recipes._core.loss_path.distill import (
    Distill,
    check_distill_shapes,
    distilled,
    soft_target_loss,
)
from lightning_recipes._core.loss_path.doors import _Labels, _LossMode
from lightning_recipes._core.loss_path.edit import (
    LOSS_FUNCTIONS,
    SUPPORTED_LOSS_MODULES,
    Kind,
    LossEdit,
    MixTerm,
    check_distill_kind,
    check_loss_module,
    compose_mix,
    edited_loss,
    shift_logits,
    uniform_target,
)
from lightning_recipes._core.loss_path.path import LossPath
from lightning_recipes._core.loss_path.recipe import LossRecipe, LossStage, weighted_training_loss

__all__ = [
    "LOSS_FUNCTIONS",
    "SUPPORTED_LOSS_MODULES",
    "Distill",
    "Kind",
    "LossEdit",
    "LossPath",
    "LossRecipe",
    "LossStage",
    "MixTerm",
    "_Labels",
    "_LossMode",
    "check_distill_kind",
    "check_distill_shapes",
    "check_loss_module",
    "compose_mix",
    "distilled",
    "edited_loss",
    "shift_logits",
    "soft_target_loss",
    "uniform_target",
    "weighted_training_loss",
]
