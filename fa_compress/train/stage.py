"""The `finetune` stage: model + data -> gated, fine-tuned model in a run directory.

>>> from fa_compress.train.stage import FinetuneOptions, finetune_run
>>> run, result = finetune_run(FinetuneOptions())   # the embedded default: Lite0 on all of Fashion-MNIST, 64 px
>>> with_img_size(FinetuneOptions(model="resnet50", data="imagefolder:birds")).img_size_choice.describe()
"224: resnet50's pretrained resolution"
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from ..errors import ConfigError, NotFoundError
from ..gates import gate_ranking, has_gates, insert_gates
from ..run import MANIFEST, Run, runs_root
from ..models.saved import model_meta
from .config import FinetuneResult, TrainConfig
from .distributed import Context, barrier, init_context
from .loop import finetune
from .memory_format import resolve_memory_format
from .progress import phase_bar
from ..data import (DEFAULT_VAL_FRACTION, MIN_VAL_PER_CLASS, check_val_fraction, check_val_min_per_class,
                    make_loader)
from .sampler import ResumableSampler
from ..machine import wait_policy_record
from ..models.saved import load_run_model
from ..data import ImgSizeChoice, choose_img_size, load_dataset
from ..models import build_model, get_head, get_spec
from ..models import trust_code
from ..run import load_train_state
from ..run import save_train_state

DEFAULT_MODEL = "efficientnet_lite0"
DEFAULT_DATA = "fashion-mnist"
STATE_FILE = "train_state.pt"
LEGACY_VAL_FRACTION = DEFAULT_VAL_FRACTION  # what a run recorded without one is reloaded with


@dataclass(frozen=True)
class FinetuneOptions:
    """What `facompress finetune` was asked for."""

    model: str = DEFAULT_MODEL
    weights: str = "imagenet"
    data: str = DEFAULT_DATA
    data_root: Path | None = None
    img_size: int | None = None      # None: the dataset's declared size, else the model's pretrained one
    #                                  (data/img_size.py; `with_img_size` fills it and records which rule chose it)
    limit_train: int | None = None   # None: every training image (else a seeded, class-balanced subset of N)
    limit_test: int | None = None    # None: the whole test split, as published figures use
    val_fraction: float = DEFAULT_VAL_FRACTION  # carved from the training images unless the dataset has its own
    val_min_per_class: int = MIN_VAL_PER_CLASS  # raised to this many per class where training keeps 3/4 of it
    #                                             (the rule: data/_val_fraction.py)
    gates: bool | None = None        # None: insert gates when the schedule has a `gates` phase
    device: str = "auto"
    run: Path | None = None
    train: TrainConfig = field(default_factory=TrainConfig)
    show_progress: bool = True
    resume: bool = False             # continue `run` (default: the latest) from its last checkpoint
    trust_code: bool = False         # allow a `file.py:factory` model: importing it runs that code
    # which rule chose img_size (set by `with_img_size`); run.json keeps it beside the options, not in them
    img_size_choice: ImgSizeChoice | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.img_size is not None and (isinstance(self.img_size, bool) or not isinstance(self.img_size, int)
                                          or not 16 <= self.img_size <= 1024):
            raise ConfigError(f"img_size must be a whole number of pixels in [16, 1024] (got {self.img_size!r})")
        for name in ("limit_train", "limit_test"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be > 0 (got {value})")
        check_val_fraction(self.val_fraction)
        check_val_min_per_class(self.val_min_per_class)

    def to_dict(self) -> dict:
        d = asdict(self)
        del d["img_size_choice"]  # recorded beside the options (`img_size_choice`), so a replay's options match
        d["data_root"] = str(self.data_root) if self.data_root else None
        d["run"] = str(self.run) if self.run else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> FinetuneOptions:
        """The options a run recorded (the inverse of `to_dict`)."""
        train = TrainConfig.from_dict(d["train"])
        d = {"val_fraction": LEGACY_VAL_FRACTION, **d}  # runs recorded before the validation split
        d = {"val_min_per_class": 0, **d}  # runs recorded before the split's floor: the fraction alone
        return cls(**{**d, "train": train, "data_root": Path(d["data_root"]) if d.get("data_root") else None,
                      "run": Path(d["run"]) if d.get("run") else None})


def _load_inputs(opts: FinetuneOptions, weights: str | None = None):

    spec = get_spec(opts.model)  # unknown names fail here, before anything is written
    choose_img_size(opts.img_size, spec, opts.data)  # refuses a size below the model's smallest input
    bundle = load_dataset(opts.data, root=opts.data_root, img_size=opts.img_size,
                          normalization=spec.normalization, limit_train=opts.limit_train,
                          limit_test=opts.limit_test, seed=opts.train.seed, val_fraction=opts.val_fraction,
                          val_min_per_class=opts.val_min_per_class)
    model = build_model(opts.model, num_classes=len(bundle.classes), weights=weights or opts.weights)
    gated = opts.gates if opts.gates is not None else "gates" in opts.train.schedule
    if gated:
        insert_gates(model)
    return spec, bundle, model, get_head(model, opts.model)


def eval_loader(dataset, cfg: TrainConfig, ctx: Context) -> DataLoader:
    """An unshuffled loader over `dataset`, sharded over the ranks without padding (no image twice)."""
    sampler = ResumableSampler(len(dataset), batch_size=cfg.batch_size, seed=0, epoch=0,
                               shuffle=False, rank=ctx.rank, world=ctx.world, pad=False)
    return make_loader(dataset, max(cfg.batch_size, 128), shuffle=False, sampler=sampler,
                       device=ctx.device.type)


def finetune_run(opts: FinetuneOptions) -> tuple[Run, FinetuneResult]:
    """Fine-tune as asked and store the best model, the gate ranking and the metrics in a run.

    With `opts.resume`, the run's recorded options are used and training continues from its last
    checkpoint (phase end or every `checkpoint_every` steps) with optimizer, schedule, data order
    and random state restored.
    """

    with trust_code(opts.trust_code):  # user code (file.py:factory) is imported only when asked
        return _finetune_run(with_img_size(opts))


def with_img_size(opts: FinetuneOptions) -> FinetuneOptions:
    """`opts` with `img_size` chosen by `data.choose_img_size` (the size asked for, else the dataset's
    declared size, else the model's pretrained resolution) and `img_size_choice` saying which rule chose
    it; `ConfigError` for a size below the model's smallest input. A resumed run keeps its recorded size."""
    if opts.resume or (opts.img_size_choice is not None and opts.img_size_choice.size_px == opts.img_size):
        return opts
    with trust_code(opts.trust_code):
        choice = choose_img_size(opts.img_size, get_spec(opts.model), opts.data)
    return replace(opts, img_size=choice.size_px, img_size_choice=choice)


def _finetune_run(opts: FinetuneOptions) -> tuple[Run, FinetuneResult]:
    ctx = init_context(opts.device)
    with ExitStack() as held:  # the run's writer lock, from its creation (or before resuming reads it) to the end
        state = None
        if opts.resume:
            run = Run.resolve(opts.run)
            held.enter_context(_writer(run, ctx))
            opts, state = _resume_point(run, opts)
        torch.manual_seed(opts.train.seed)
        # a resumed model gets its weights from the checkpoint, not from --weights
        spec, bundle, model, head = _load_inputs(opts, weights="none" if state is not None else None)
        if state is not None:
            model.load_state_dict(state["model"])
            torch.set_rng_state(state["rng"])
        model.to(ctx.device)
        norm = {"mean": list(spec.normalization.mean), "std": list(spec.normalization.std)}
        if state is None:
            run = _create_run(opts, ctx)
            held.enter_context(_writer(run, ctx))
        meta_extra = {"data": opts.data, "weights": opts.weights, "stage": "finetune"}

        def on_best(m, phase_result) -> None:
            if ctx.is_main:
                meta = model_meta(m, arch=opts.model, classes=bundle.classes, img_size=opts.img_size,
                                  normalization=norm, phase=phase_result.index, **meta_extra)
                run.save_model("finetuned", m, meta)

        with phase_bar(opts.show_progress and ctx.is_main) as bar:
            result = finetune(model, head, bundle.train, eval_loader(bundle.val, opts.train, ctx), opts.train, ctx,
                              bar, test_loader=eval_loader(bundle.test, opts.train, ctx), on_best=on_best,
                              on_checkpoint=_checkpointer(run, model, ctx), resume=state)
        barrier(ctx)
        if ctx.is_main:
            _finish(run, opts, bundle, result, ctx)
        return run, result


def _writer(run: Run, ctx: Context) -> AbstractContextManager:
    """The run's writer lock on rank 0, which writes the run; the other ranks write nothing and hold none."""
    return run.writer("finetune") if ctx.is_main else nullcontext()


def _resume_point(run: Run, asked: FinetuneOptions) -> tuple[FinetuneOptions, dict]:
    """The options `run` recorded (with this call's progress, device and trust) and its last checkpoint."""
    stage = run.stage("finetune")
    if not stage or "options" not in stage:
        raise NotFoundError(f"run {run.path} has no fine-tuning to resume")
    if not (run.path / STATE_FILE).is_file():
        raise NotFoundError(f"run {run.path} has no checkpoint ({STATE_FILE}) to resume from")
    state = load_train_state(run.path / STATE_FILE)
    try:
        recorded = FinetuneOptions.from_dict(stage["options"])
    except TypeError as exc:  # options this version does not know, or of the wrong shape
        raise ConfigError(f"{run.path / 'run.json'}: the fine-tuning options cannot be resumed by this version "
                          f"of facompress ({exc}); start a new run") from exc
    opts = replace(recorded, show_progress=asked.show_progress,
                   device=asked.device, resume=True, trust_code=asked.trust_code)
    if state["phase_index"] >= len(opts.train.schedule) and not state.get("step"):
        raise ConfigError(f"run {run.path} already finished all {len(opts.train.schedule)} phases")
    return opts, state


def _create_run(opts: FinetuneOptions, ctx: Context) -> Run:
    """Rank 0 creates the run; the others open the same folder (torchrun shares the filesystem)."""
    if ctx.is_main:
        run = _empty_run(opts.run) or Run.create(name=f"{opts.model}-{opts.data.split(':')[0]}", path=opts.run)
        run.record("finetune", {"status": "running", "options": opts.to_dict(), **_img_size_record(run, opts),
                                "world_size": ctx.world})
        if ctx.distributed:
            _broadcast_path(run.path, ctx)
        return run
    return Run(_broadcast_path(None, ctx))


def _empty_run(path: Path | None) -> Run | None:
    """The run at `path` when it records no fine-tuning yet: made by a chain that writes into it first
    (`facompress compress` records its recipe), so the fine-tuning is its first stage. None otherwise
    (`Run.create` decides: a new folder, or an error for a run that has one)."""
    if path is None or not (Path(path) / MANIFEST).is_file():
        return None
    run = Run.open(path)
    return run if run.stage("finetune") is None else None


def _img_size_record(run: Run, opts: FinetuneOptions) -> dict:
    """`{"img_size_choice": {size_px, rule, reason}}`: which rule chose the input size, kept beside the options
    (a resumed fine-tuning keeps what its run recorded)."""
    if opts.img_size_choice is not None:
        return {"img_size_choice": opts.img_size_choice.to_dict()}
    recorded = (run.stage("finetune") or {}).get("img_size_choice")
    return {"img_size_choice": recorded} if recorded else {}


def _broadcast_path(path: Path | None, ctx: Context) -> Path:
    import torch.distributed as dist

    box = [str(path) if path is not None else None]
    dist.broadcast_object_list(box, src=0)
    return Path(box[0])


def _checkpointer(run: Run, model, ctx: Context):

    def save(state: dict) -> None:
        if ctx.is_main:
            save_train_state(run.path / STATE_FILE, {**state, "model": model.state_dict(),
                                                     "rng": torch.get_rng_state()})
    return save


def _finish(run: Run, opts: FinetuneOptions, bundle, result: FinetuneResult, ctx: Context) -> None:
    model, meta = load_run_model(run, "finetuned")
    rankings = gate_ranking(model, opts.img_size) if has_gates(model) else []
    run.write_json("gates.json", [r.to_dict() for r in rankings])
    run.record("finetune", {
        "status": "done", "options": opts.to_dict(), **_img_size_record(run, opts), "world_size": ctx.world,
        "memory_format": resolve_memory_format(opts.train.memory_format, ctx.device, model).to_dict(),
        "openmp_wait": wait_policy_record(),
        "dataset": {"spec": opts.data, **bundle.to_json()},
        "artifacts": {"model": "finetuned.safetensors", "gates": "gates.json"},
        "metrics": {**result.to_dict(), "gated_layers": len(rankings),
                    "noise_channels": sum(r.noise for r in rankings),
                    "amplified_channels": sum(r.amplified for r in rankings),
                    "channels": sum(r.channels for r in rankings)},
    })
    run.mark_latest(runs_root())
