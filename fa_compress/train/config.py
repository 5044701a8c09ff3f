"""Fine-tuning settings and results."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..errors import ConfigError


@dataclass(frozen=True)
class TrainConfig:
    """How to fine-tune. Defaults are the measured ones (benchmarks/finetune_compare.py)."""

    schedule: tuple[str, ...] = ("head", "gates", "gates", "gates")  # best at equal epochs AND equal
    #   wall time in benchmarks/finetune_compare.py: 87.75% vs full fine-tuning 87.05% (3 epochs each)
    batch_size: int = 32       # 32 beat 64 for gate phases at equal epochs (86.5% vs 85.5% after one)
    lr_head: float = 3e-3      # the classifier in `head` phases, and in a first phase of another kind
    lr_head_tuning: float = 3e-4  # the classifier in later gates/bn/all phases, once fitted: 3e-3
    #                               there unlearned the probe (86.0% vs 87.4% after head,gates,gates)
    lr_gates: float = 1e-2     # gates are scalars near 1; 3e-3 learned less, 2e-2+ destabilised
    lr_bn: float = 1e-3
    lr_all: float = 3e-4       # full fine-tuning (baseline): the usual transfer-learning rate
    weight_decay: float = 1e-4  # never applied to gates: decay would fight the L1 penalty
    gate_l1: float = 1.0       # penalty on mean |gate|; 1.0 drove ~17% of gates under 0.1 AND scored best
    head_feature_epochs: int = 2  # passes over cached features per `head` phase. A fitted head leaves the
    #   gates less to learn: after 8/4/2 passes (96/93/88% train) head,gates,gates,gates scored
    #   85.9/86.75/87.75%, though the probe alone was 84.9/84.9/84.05%
    seed: int = 0
    amp: bool = True           # bf16 autocast where the device is CUDA; ignored on CPU
    channels_last: bool = True  # CUDA only
    checkpoint_every: int = 0  # steps between mid-phase checkpoints; 0 = only at phase ends
    eval_every_phase: bool = True
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.batch_size <= 0:
            raise ConfigError(f"--batch-size must be > 0 (got {self.batch_size})")
        for name in ("lr_head", "lr_head_tuning", "lr_gates", "lr_bn", "lr_all"):
            if not 0 < getattr(self, name) < 10:
                raise ConfigError(f"{name} must be in (0, 10) (got {getattr(self, name)})")
        if self.gate_l1 < 0:
            raise ConfigError(f"--gate-l1 must be >= 0 (got {self.gate_l1})")
        if self.head_feature_epochs < 1:
            raise ConfigError(f"head_feature_epochs must be >= 1 (got {self.head_feature_epochs})")
        if self.checkpoint_every < 0:
            raise ConfigError(f"--checkpoint-every must be >= 0 (got {self.checkpoint_every})")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """The inverse of `to_dict` (JSON turns the schedule tuple into a list)."""
        return cls(**{**d, "schedule": tuple(d["schedule"])})


@dataclass(frozen=True)
class PhaseResult:
    """What one phase did, measured."""

    index: int
    phase: str
    train_loss: float
    train_acc: float
    test_acc: float | None
    seconds: float
    images_per_s: float
    mean_gate: float | None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """The inverse of `to_dict` (JSON turns the schedule tuple into a list)."""
        return cls(**{**d, "schedule": tuple(d["schedule"])})


@dataclass(frozen=True)
class FinetuneResult:
    """All phases, and which one gave the best test accuracy (the checkpoint kept)."""

    phases: tuple[PhaseResult, ...]
    best_index: int
    best_test_acc: float | None
    total_s: float

    def to_dict(self) -> dict:
        return {"phases": [p.to_dict() for p in self.phases], "best_index": self.best_index,
                "best_test_acc": self.best_test_acc, "total_s": self.total_s}
