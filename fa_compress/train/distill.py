"""Knowledge distillation from a frozen teacher: the loss a training step minimises instead of the
cross-entropy alone (Hinton et al., 2015).

    loss = (1 - w) * CE(student, labels) + w * T^2 * KL(softmax(teacher / T) || softmax(student / T))

The teacher is a frozen copy (eval mode, no gradients) of the model as it was when the copy was taken;
the pruning chain takes it from the dense model before the cut, so the fade and the recovery learn
from the dense model's soft labels. A `Distillation` is a `loss_fn` for `train.loop.run_image_phase`
and `train.loop.finetune`, and times the teacher's forward passes (`seconds`).

>>> teacher = Distillation(dense_model, weight=0.5, temperature=4.0)
>>> finetune(pruned, head, train_set, val_loader, cfg, ctx, bar, loss_fn=teacher)
>>> teacher.seconds          # what the teacher's forward passes added
"""

from __future__ import annotations

import copy
import time

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError

DEFAULT_DISTILL_TEMPERATURE = 4.0  # Hinton et al.'s range is 1-20; 4 is the common choice for image classifiers


def check_distill(weight: float, temperature: float) -> None:
    """Refuse a distillation weight outside [0, 1] or a temperature that is not > 0."""
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 1:
        raise ConfigError(f"distill_weight must be in [0, 1] (0: no distillation; got {weight!r})")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise ConfigError(f"distill_temperature must be > 0 (got {temperature!r})")


def distill_loss(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, weight: float,
                 temperature: float) -> torch.Tensor:
    """(1 - weight) * cross-entropy + weight * T^2 * KL(teacher || student) at temperature T, both
    over the batch mean. `student`, `teacher`: (B, classes) logits; `labels`: (B,)."""
    ce = F.cross_entropy(student.float(), labels)
    log_p_student = F.log_softmax(student.float() / temperature, dim=1)  # (B, classes)
    log_p_teacher = F.log_softmax(teacher.float() / temperature, dim=1)  # (B, classes)
    kl = F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
    return (1 - weight) * ce + weight * temperature ** 2 * kl


class Distillation:
    """A `loss_fn` that distils from a frozen copy of `teacher` (taken now; `teacher` is not touched)."""

    def __init__(self, teacher: nn.Module, weight: float, temperature: float = DEFAULT_DISTILL_TEMPERATURE):
        check_distill(weight, temperature)
        self.teacher = copy.deepcopy(teacher).eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.weight, self.temperature = float(weight), float(temperature)
        self.seconds = 0.0  # the teacher's forward passes, summed

    def __call__(self, logits: torch.Tensor, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        t0 = time.perf_counter()
        with torch.no_grad():
            target = self.teacher(images)  # (B, classes)
        if target.is_cuda:
            torch.cuda.synchronize(target.device)  # else the time lands on the student's step
        self.seconds += time.perf_counter() - t0
        return distill_loss(logits, target, labels, self.weight, self.temperature)
