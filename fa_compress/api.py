"""The Python API on objects: your `nn.Module`, your `Dataset` or `DataLoader`, no run directory.

Each call is thin over the stage the CLI runs; defaults are the CLI's. The whole chain:

>>> import fa_compress as fc
>>> fc.insert_gates(model)                                   # a gate after every BatchNorm2d
>>> fc.finetune(model, train_set, val_set)                   # head, then gates (mostly)
>>> pruned = fc.prune(model, example, keep=0.6, train_data=train_set)   # or target_macs=0.5
>>> fc.save_pruned(pruned, "pruned.safetensors")             # + fc.load_pruned(path, MyNet())
>>> fc.export_onnx(pruned, "model.onnx", example_input=example)          # checked by onnxruntime

Models take (N, 3, H, W) images and end in an `nn.Linear` classifier, found automatically
(pass `head=` to choose another). The functions work on the CPU by default (`device="auto"` uses a
GPU where there is one).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .pruning.chain import ChainOptions
from .pruning.pruner import PruneSettings

if TYPE_CHECKING:
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, Dataset

    from .export.onnx import OnnxExport
    from .models import Normalization
    from .run import RunCheck
    from .train.config import FinetuneResult

Data = Any  # a torch Dataset of (image, label) or a DataLoader over one
EVAL_BATCH = 128


@dataclass(frozen=True)
class ModelSize:
    """Parameters and multiply-accumulates of one forward pass of one image."""

    params: int
    macs: int


def _dataset(data: Data) -> Dataset:
    from torch.utils.data import DataLoader

    return data.dataset if isinstance(data, DataLoader) else data


def _loader(data: Data | None, batch_size: int = EVAL_BATCH) -> DataLoader | None:
    from torch.utils.data import DataLoader

    if data is None or isinstance(data, DataLoader):
        return data
    return DataLoader(data, batch_size=batch_size, shuffle=False)


def _first_image(data: Data) -> torch.Tensor:
    image = _dataset(data)[0][0]
    if getattr(image, "dim", lambda: 0)() != 3 or image.shape[0] != 3:
        raise ConfigError(f"the data must give (image, label) pairs with images of shape (3, H, W); the first "
                          f"image is {getattr(image, 'shape', type(image).__name__)}")
    return image


def find_classifier(model: nn.Module, img_size: int = 64) -> nn.Module:
    """The model's classifier: the `nn.Linear` whose output is the model's output."""
    from .models._discover import find_head

    return model.get_submodule(find_head(model, img_size, type(model).__name__))


def _head(model: nn.Module, head: nn.Module | str | None, img_size: int) -> nn.Module:
    if head is None:
        return find_classifier(model, img_size)
    return model.get_submodule(head) if isinstance(head, str) else head


def insert_gates(model: nn.Module) -> nn.Module:
    """Put a learnable gate after every BatchNorm2d of `model`, in place; returns it."""
    from .gates import insert_gates as insert

    return insert(model)


def fold_gates(model: nn.Module) -> nn.Module:
    """Fold every gate into its BatchNorm, in place (exact); returns the model."""
    from .gates import fold_gates as fold

    return fold(model)


def finetune(model: nn.Module, train_data: Data, val_data: Data | None = None, *,
             schedule: Sequence[str] | str = ("head", "gates", "gates", "gates"), batch_size: int = 32,
             head: nn.Module | str | None = None, device: str = "cpu", progress: bool = False,
             after_backward: Callable[[nn.Module], None] | None = None, **train_options: Any) -> FinetuneResult:
    """Fine-tune `model` in place, one epoch per phase of `schedule` but at least `min_phase_steps` optimizer
    steps (default 100; 0: one epoch); returns the per-phase results, each with the steps it took.

    Phases: `head` (the classifier), `gates` (gates and classifier, L1 pressure on the gates), `bn`,
    `all`. With `val_data`, the model ends with the weights of its best phase on it. Gates are
    inserted when the schedule has a `gates` phase and the model has none. `train_options` are
    `TrainConfig` fields (`lr_gates=1e-2`, `gate_l1=1.0`, `seed=0`, ...). `after_backward(model)` runs
    after every backward pass (e.g. torch-pruning's `pruner.regularize` for sparse training).
    """
    from .gates import has_gates
    from .train import TrainConfig, init_context, parse_schedule
    from .train.loop import finetune as run_schedule
    from .train.progress import phase_bar

    phases = parse_schedule(schedule) if isinstance(schedule, str) else parse_schedule(",".join(schedule))
    cfg = TrainConfig(schedule=phases, batch_size=batch_size, **train_options)
    if "gates" in phases and not has_gates(model):
        insert_gates(model)
    ctx = init_context(device)
    model.to(ctx.device)
    classifier = _head(model, head, _first_image(train_data).shape[-1])
    best: dict[str, Any] = {}

    def keep_best(m: nn.Module, _result: Any) -> None:
        best["state"] = copy.deepcopy(m.state_dict())

    with phase_bar(progress) as bar:
        result = run_schedule(model, classifier, _dataset(train_data), _loader(val_data), cfg, ctx, bar,
                              on_best=keep_best if val_data is not None else None, after_backward=after_backward)
    if "state" in best:
        model.load_state_dict(best["state"])
    return result


def evaluate(model: nn.Module, data: Data, device: str = "cpu") -> float:
    """Top-1 accuracy of `model` on `data`, in [0, 1]."""
    from .train import evaluate as score, init_context

    ctx = init_context(device)
    model.to(ctx.device)
    return score(model, _loader(data), ctx)


def model_size(model: nn.Module, img_size: int) -> ModelSize:
    """Parameters (gates folded away) and MACs at `img_size` px."""
    from .gates import has_gates
    from .models.complexity import count_macs, count_params

    plain = fold_gates(copy.deepcopy(model)) if has_gates(model) else model
    return ModelSize(params=count_params(plain), macs=count_macs(plain, img_size))


def prune(model: nn.Module, example_input: torch.Tensor, *, keep: float | None = None,
          target_macs: float | None = None, target_params: float | None = None,
          importance: str = PruneSettings.importance, gate_score: str = PruneSettings.gate_score,
          gate_per_mac: float = PruneSettings.gate_per_mac, gate_reduction: str = PruneSettings.gate_reduction,
          score_images: int = PruneSettings.score_images, scope: str = PruneSettings.scope,
          round_to: int = PruneSettings.round_to, ignore: Sequence[str] = (),
          fade_epochs: int | None = ChainOptions.fade_epochs, recover_epochs: int | None = ChainOptions.recover_epochs,
          fade_steps: int | None = ChainOptions.fade_steps, recover_steps: int | None = ChainOptions.recover_steps,
          recover_phase: str = ChainOptions.recover_phase, recover_lr: float = ChainOptions.recover_lr,
          recover_batch_size: int = ChainOptions.recover_batch_size,
          distill_weight: float = ChainOptions.distill_weight,
          distill_temperature: float = ChainOptions.distill_temperature,
          prune_steps: int = ChainOptions.prune_steps, deep_cut_factor: float = ChainOptions.deep_cut_factor,
          train_data: Data | None = None,
          val_data: Data | None = None, head: nn.Module | str | None = None, seed: int = 0,
          device: str = "auto", progress: bool = False) -> nn.Module:
    """A pruned, gate-folded copy of `model` (which is left as it was), made by the same chain as
    `facompress prune` with the same defaults (fa_compress/pruning/chain.py).

    Budget: `keep` (fraction of channels, default `PruneSettings.keep`), or `target_macs` /
    `target_params` (fraction of the dense model's). `importance`: gate (needs gates), l1, bn, taylor,
    random. With `train_data`, the gate ranking reads Taylor scores and fades its cut out for
    `fade_steps` optimizer steps (or `fade_epochs` whole epochs; default one epoch but at least
    `pruning.steps.FLOOR_STEPS`) before cutting; other rankings recover for `recover_steps` (or
    `recover_epochs`; the same default) after it, kept only if `val_data` scores it at least as high.
    Without `train_data` nothing trains and the gate ranking needs `gate_score="value"` (the gates
    themselves). `ignore`: layer names kept whole.
    `distill_weight` > 0: the fade and the recovery also learn from the dense model's softened outputs
    (at `distill_temperature`); `prune_steps` > 1: a MAC or params target is reached in that many
    faded cuts (fa_compress/pruning/gradual.py). `deep_cut_factor`: the default fade and recovery budgets
    grow up to this many times for cuts below half the dense MACs (fa_compress/pruning/steps.py).
    """
    from .pruning.budget import Budget
    from .pruning.chain import prune_chain
    from .pruning.result import Scores
    from .train import TrainConfig, init_context
    from .train.evaluate import evaluate_detailed

    budget = Budget(keep=keep, target_macs=target_macs, target_params=target_params)  # one budget, checked first
    if keep is None and target_macs is None and target_params is None:
        keep = PruneSettings.keep
        budget = Budget(keep=keep)
    trains = train_data is not None
    if not trains and importance == "gate" and gate_score == "taylor":
        raise ConfigError("gate_score 'taylor' reads training images: pass train_data=, or gate_score='value' to "
                          "rank by the gates themselves")
    settings = PruneSettings(keep=keep or PruneSettings.keep, importance=importance, scope=scope, round_to=round_to,
                             ignore=tuple(ignore), gate_score=gate_score,
                             gate_per_mac=gate_per_mac, gate_reduction=gate_reduction, score_images=score_images,
                             seed=seed)
    # without train_data nothing trains unless asked (which the chain then refuses)
    options = ChainOptions(fade_epochs=0 if not trains and fade_epochs is None and fade_steps is None else fade_epochs,
                           recover_epochs=0 if not trains and recover_epochs is None and recover_steps is None
                           else recover_epochs, fade_steps=fade_steps, recover_steps=recover_steps,
                           recover_phase=recover_phase, recover_lr=recover_lr,
                           recover_batch_size=recover_batch_size, distill_weight=distill_weight,
                           distill_temperature=distill_temperature, prune_steps=prune_steps,
                           deep_cut_factor=deep_cut_factor).resolved(importance)
    ctx = init_context(device)
    cfg = TrainConfig(seed=seed)
    work = copy.deepcopy(model).to(ctx.device)
    example = example_input.to(ctx.device)
    val = _loader(val_data)

    def score(m: nn.Module) -> Scores:
        found = evaluate_detailed(m, val, ctx, cfg)
        return Scores(val=found, test=found)  # no test split here: only validation is read

    result = prune_chain(work, _head(work, head, example.shape[-1]), settings, example, budget,
                         _dataset(train_data) if trains else None, cfg, ctx, options=options, seed=seed,
                         score=score if val is not None else None, val_loader=val, progress=progress)
    return result.model


def export_onnx(model: nn.Module, path: str | Path, *, example_input: torch.Tensor | None = None,
                img_size: int | None = None, classes: Sequence[str] | None = None,
                normalization: Normalization | None = None, opset: int = 17, check: bool = True) -> OnnxExport:
    """Write `model` (gates folded on a copy) as one checked ONNX file with a dynamic batch.

    With `check`, onnxruntime runs 8 random images against PyTorch and a mismatch raises
    `ParityError` (the file is removed). `classes` and `normalization` go into the file's metadata.
    """
    import torch

    from .export import check_parity, enforce, onnx_metadata
    from .export.onnx import export_onnx as write
    from .models import IMAGENET_NORMALIZATION

    if img_size is None:
        if example_input is None:
            raise ConfigError("export_onnx needs example_input= or img_size= to know the input size")
        img_size = int(example_input.shape[-1])
    plain = fold_gates(copy.deepcopy(model)).cpu().eval()
    with torch.no_grad():
        n_out = plain(torch.zeros(1, 3, img_size, img_size)).shape[-1]  # (1, classes)
    norm = normalization or IMAGENET_NORMALIZATION
    meta = onnx_metadata(classes=list(classes) if classes else [str(i) for i in range(n_out)], img_size=img_size,
                         mean=norm.mean, std=norm.std, source_run="python", model_name=type(model).__name__)
    result = write(plain, Path(path), img_size=img_size, opset=opset, metadata=meta)
    if check:
        gen = torch.Generator().manual_seed(0)
        enforce(check_parity(plain, Path(path), torch.randn(8, 3, img_size, img_size, generator=gen)),
                discard_file=True)
    return result


def save_pruned(model: nn.Module, path: str | Path) -> Path:
    """Save weights and channel counts (safetensors); `load_pruned` rebuilds the model from them."""
    from .run import save_model_file
    from .gates import has_gates
    from .models.structure import describe_structure

    save_model_file(Path(path), model.state_dict(), {"structure": describe_structure(model),
                                                     "gated": has_gates(model), "format": "facompress-api-1"})
    return Path(path)


def load_pruned(path: str | Path, base: nn.Module) -> nn.Module:
    """Load a `save_pruned` file into `base`, a fresh instance of the same (unpruned) architecture.

    The layers are resized from the file's structure record and the weights loaded strictly; no
    code is read from the file.
    """
    from .run import load_model_file
    from .errors import CheckpointError
    from .gates import insert_gates as insert
    from .models._builder import with_versions
    from .models.structure import apply_structure, check_structure

    state, meta = load_model_file(Path(path))
    structure = meta.get("structure")
    check_structure(structure, state)
    apply_structure(base, structure)
    if meta.get("gated"):
        insert(base, like=state)  # only the gates the file holds (older files: no ConvNeXt MLP gates)
    try:
        base.load_state_dict(with_versions(base, state), strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path} does not fit {type(base).__name__}: {str(exc).splitlines()[0][:300]}") from exc
    return base.eval()


def check_run(path: str | Path | None = None, root: str | Path | None = None) -> RunCheck:
    """Check a run directory (default: the latest): the manifest, every file's checksum, each model file
    rebuilt and loaded, each ONNX file through onnx's checker (where onnx is installed), JSON parsed."""
    from ._deps import available
    from .models.saved import check_model_content
    from .run import check_run as check

    checks = {".safetensors": check_model_content}
    if available("onnx"):
        from .export.onnx import check_onnx_file

        checks[".onnx"] = lambda _run, file: check_onnx_file(file)
    return check(Path(path) if path is not None else None, Path(root) if root is not None else None, checks)
