"""Fine-tuning settings and results."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from ..accuracy import Accuracy
from ..errors import CheckpointError, ConfigError
from ..run import Run, finetune_options
from ..gates.penalties import PENALTIES
from .phase_steps import PhaseSteps, check_min_phase_steps


@dataclass(frozen=True)
class TrainConfig:
    """How to fine-tune. Why each default is what it is: docs/decisions/finetune-schedule.md."""

    schedule: tuple[str, ...] = ("head", "gates", "gates", "gates")  # docs/decisions/finetune-schedule.md
    batch_size: int = 32
    lr_head: float = 3e-3      # the classifier in `head` phases, and in a first phase of another kind
    lr_head_tuning: float = 3e-4  # the classifier in later gates/bn/all phases, once fitted
    lr_gates: float = 1e-2     # gates are scalars near 1
    lr_bn: float = 1e-3
    lr_all: float = 3e-4       # full fine-tuning (baseline): the usual transfer-learning rate
    weight_decay: float = 1e-4  # never applied to gates: decay would fight the L1 penalty
    gate_l1: float = 1.0       # weight of the penalty on mean |gate|
    gate_penalty: str = "l1"   # l1, cost-l1 (MorphNet) or polar (Zhuang et al.); fa_compress/gates/penalties.py
    head_feature_epochs: int = 2  # passes over cached features per `head` phase (a less fitted head leaves the gates more)
    min_phase_steps: int | None = None  # fewest optimizer steps per phase; None: phase_steps.FLOOR_STEPS, 0: none
    #                                       (a small dataset's epoch is a few steps: docs/decisions/finetune-steps.md)
    seed: int = 0
    amp: bool = True           # bf16 autocast where the device is CUDA; ignored on CPU
    memory_format: str = "auto"  # auto | channels_last | contiguous (docs/decisions/memory-format.md)
    checkpoint_every: int = 0  # steps between mid-phase checkpoints; 0 = only at phase ends
    eval_every_phase: bool = True
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.batch_size <= 0:
            raise ConfigError(f"batch_size must be > 0 (got {self.batch_size})")
        for name in ("lr_head", "lr_head_tuning", "lr_gates", "lr_bn", "lr_all"):
            if not 0 < getattr(self, name) < 10:
                raise ConfigError(f"{name} must be in (0, 10) (got {getattr(self, name)})")

        if self.gate_penalty not in PENALTIES:
            raise ConfigError(f"gate_penalty must be one of {', '.join(PENALTIES)} (got {self.gate_penalty!r})")
        if self.gate_l1 < 0:
            raise ConfigError(f"gate_l1 must be >= 0 (got {self.gate_l1})")
        if self.head_feature_epochs < 1:
            raise ConfigError(f"head_feature_epochs must be >= 1 (got {self.head_feature_epochs})")
        check_min_phase_steps(self.min_phase_steps)
        if self.checkpoint_every < 0:
            raise ConfigError(f"checkpoint_every must be >= 0 (got {self.checkpoint_every})")
        from .memory_format import check_memory_format

        check_memory_format(self.memory_format)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """The inverse of `to_dict` (JSON turns the schedule tuple into a list).

        Runs recorded before `memory_format` carry `channels_last` (True: channels_last on CUDA only,
        now `auto`; False: contiguous everywhere). Runs recorded before `min_phase_steps` ran one epoch per
        phase (0)."""
        d = {"min_phase_steps": 0, **d}
        legacy = d.pop("channels_last", None)
        if legacy is not None and "memory_format" not in d:
            d["memory_format"] = "auto" if legacy else "contiguous"
        return cls(**{**d, "schedule": tuple(d["schedule"])})


@dataclass(frozen=True)
class PhaseResult:
    """What one phase did, measured."""

    index: int
    phase: str
    train_loss: float
    train_acc: float
    test_acc: float | None  # reported only: never read by any choice
    seconds: float
    images_per_s: float
    mean_gate: float | None
    val: Accuracy | None = None  # what the best phase is chosen on
    test: Accuracy | None = None  # test_acc with its image count and 95% interval
    steps: PhaseSteps | None = None  # the optimizer steps it took and the rule that chose them

    @property
    def val_acc(self) -> float | None:
        return self.val.value if self.val is not None else None

    def to_dict(self) -> dict:
        return {**asdict(self), "val_acc": self.val_acc}

    @classmethod
    def from_dict(cls, d: dict) -> PhaseResult:
        """The inverse of `to_dict` (checkpoints written before validation lack `val` and `test`)."""
        d = {k: v for k, v in d.items() if k != "val_acc"}
        for key in ("val", "test"):
            d[key] = Accuracy(**d[key]) if d.get(key) else None
        d["steps"] = PhaseSteps(**d["steps"]) if d.get("steps") else None  # none in checkpoints before the floor
        return cls(**d)


@dataclass(frozen=True)
class FinetuneResult:
    """All phases, and which one the validation split chose (the checkpoint kept; `selection`: the rule
    and each comparison, `train/phase_choice.py`)."""

    phases: tuple[PhaseResult, ...]
    best_index: int
    best_test_acc: float | None  # the chosen phase's test accuracy: reported, not chosen on
    total_s: float
    best_val: Accuracy | None = None
    best_test: Accuracy | None = None
    selection: dict | None = None

    @property
    def best_val_acc(self) -> float | None:
        return self.best_val.value if self.best_val is not None else None

    def to_dict(self) -> dict:
        return {"phases": [p.to_dict() for p in self.phases], "best_index": self.best_index,
                "selected_on": "validation", "best_val_acc": self.best_val_acc,
                "best_test_acc": self.best_test_acc, "total_s": self.total_s,
                "best_val": self.best_val.to_dict() if self.best_val else None,
                "best_test": self.best_test.to_dict() if self.best_test else None, "selection": self.selection}


def train_config_of_run(run: Run) -> TrainConfig:
    """The `TrainConfig` the run was fine-tuned with; `CheckpointError` when the manifest records
    settings this facompress does not have (a newer version wrote it) or values out of range."""
    recorded = finetune_options(run)["train"]
    try:
        return TrainConfig.from_dict(recorded)
    except (TypeError, ConfigError) as exc:
        known = {f.name for f in fields(TrainConfig)}
        unknown = sorted(set(recorded) - known)
        problem = (f"has settings this facompress does not know: {', '.join(unknown)}" if unknown
                   else f"does not make a training configuration ({exc})")
        by = run.manifest.get("written_by", "an unknown facompress")
        raise CheckpointError(f"{run.manifest_path}: field stages.finetune.options.train {problem}; written by "
                              f"{by}: use that version, or re-run `facompress finetune`") from None
