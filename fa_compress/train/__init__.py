"""Fine-tuning: phase schedules, the loop, distributed set-up, progress."""

from .config import FinetuneResult, PhaseResult, TrainConfig
from .distributed import Context, init_context
from .loop import evaluate, finetune
from .phases import PHASES, configure_phase, parse_schedule

__all__ = ["Context", "FinetuneResult", "PHASES", "PhaseResult", "TrainConfig", "configure_phase",
           "evaluate", "finetune", "init_context", "parse_schedule"]
