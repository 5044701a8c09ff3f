"""The recipe's sections: one per stage, whose keys are that stage command's option names with
underscores (`facompress finetune --img-size` -> `img_size`), and how each section becomes the stage's
library call. This is the one place that maps recipe keys to options: when a command's options
change, change its table and builder here.

Values are what the option takes on the command line (`schedule = "head,gates"`, `keep = "auto"`),
except that list options are TOML lists (`ignore`, `backend`, `batch_sizes = [1, 8]`). Every default
is read from the library (the options dataclasses, `bench_run`'s signature); None means not set.
Left out on purpose: what belongs to the whole chain (`run`, `resume`, `quiet`, `trust_code`: flags of
`facompress compress`), `finetune --nproc` (torchrun is launched by the command, not the library) and
`export --out` (the chain keeps its files in the run). `[export] baseline` is the chain's own key.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..bench.interleave import check_rounds
from ..bench.suite import check_options, check_sessions
from ..data import check_dataset_spec, choose_img_size
from ..errors import ConfigError
from ..export.pipeline import ExportOptions
from ..models import canonical_name, get_spec, trust_code
from ..pruning.budget import NOISE_GATE, parse_budget
from ..pruning.chain import ChainOptions
from ..pruning.pruner import PruneSettings
from ..pruning.stage import PruneOptions, SettingsSearch
from ..pruning.steps import FLOOR_STEPS
from ..report.bench_stage import MAX_IMG_SIZE, MIN_IMG_SIZE, bench_run, default_batch_sizes
from ..search.latency import LatencyTarget, check_latency_options, latency_target
from ..train.config import TrainConfig
from ..train.distributed import pick_device
from ..train.phase_steps import FLOOR_STEPS as PHASE_FLOOR_STEPS
from ..train.phases import parse_schedule
from ..train.stage import FinetuneOptions

BASELINE_MODEL = "finetuned"  # what `[export] baseline` exports beside the chosen model


@dataclass(frozen=True)
class Kind:
    """A value type a key takes, and how messages name it."""

    allowed: str                       # "a whole number"
    accepts: Callable[[Any], bool]
    normal: Callable[[Any], Any] = lambda v: v  # e.g. 1 -> 1.0 for a number key


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


STR = Kind("a string", lambda v: isinstance(v, str))
INT = Kind("a whole number", _is_int)
FLOAT = Kind("a number", _is_number, float)
BOOL = Kind("true or false", lambda v: isinstance(v, bool))
STR_LIST = Kind("a list of strings", lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), list)
INT_LIST = Kind("a list of whole numbers", lambda v: isinstance(v, list) and all(_is_int(x) for x in v), list)
KEEP = Kind('a fraction in (0, 1] or "auto"', lambda v: _is_number(v) or v == "auto",
            lambda v: v if v == "auto" else float(v))


@dataclass(frozen=True)
class Key:
    """One option of a stage: its name, type and default (None: not set, and what that means)."""

    name: str
    kind: Kind
    default: Any = None
    unset: str = ""  # what leaving it out means, for messages and the written recipe


@dataclass(frozen=True)
class Section:
    """A stage's table: its keys and a check that raises the stage's own `UserError` for values it refuses."""

    name: str
    keys: tuple[Key, ...]
    check: Callable[[dict[str, Any], bool], None]  # (values, trust_code)

    def key(self, name: str) -> Key | None:
        return next((k for k in self.keys if k.name == name), None)

    def defaults(self) -> dict[str, Any]:
        """Key -> default (lists copied, so a recipe's values never share the table's)."""
        return {k.name: list(k.default) if isinstance(k.default, list) else k.default for k in self.keys}


# ---- finetune ---------------------------------------------------------------------------------------
def finetune_options(v: dict[str, Any], *, run: Path | None = None, show_progress: bool = True,
                     trust: bool = False) -> FinetuneOptions:
    """The `FinetuneOptions` a [finetune] section asks for, as `facompress finetune` builds them."""
    train = TrainConfig(schedule=parse_schedule(v["schedule"]), batch_size=v["batch_size"], lr_head=v["lr_head"],
                        lr_head_tuning=v["lr_head_tuning"], lr_gates=v["lr_gates"], lr_all=v["lr_all"],
                        gate_l1=v["gate_l1"], gate_penalty=v["gate_penalty"], seed=v["seed"],
                        min_phase_steps=v["min_phase_steps"], checkpoint_every=v["checkpoint_every"],
                        memory_format=v["memory_format"])
    return FinetuneOptions(model=canonical_name(v["model"]), weights=v["weights"], data=v["data"],
                           data_root=Path(v["data_root"]) if v["data_root"] else None, img_size=v["img_size"],
                           limit_train=v["limit_train"] or None, limit_test=v["limit_test"] or None,
                           val_fraction=v["val_fraction"], device=v["device"], run=run, train=train,
                           show_progress=show_progress, trust_code=trust)


def _check_finetune(v: dict[str, Any], trust: bool) -> None:
    opts = finetune_options(v, trust=trust)
    check_dataset_spec(opts.data)
    if opts.weights not in ("imagenet", "none") and not Path(opts.weights).expanduser().is_file():
        raise ConfigError(f"weights must be imagenet, none or the path of a state dict file ({opts.weights} "
                          f"is not a file)")
    pick_device(opts.device)
    with trust_code(trust):
        choose_img_size(opts.img_size, get_spec(opts.model), opts.data)


FINETUNE = Section("finetune", (
    Key("model", STR, FinetuneOptions.model),
    Key("weights", STR, FinetuneOptions.weights),
    Key("data", STR, FinetuneOptions.data),
    Key("data_root", STR, None, "the dataset's usual places"),
    Key("img_size", INT, None, "the dataset's declared size, else the model's pretrained resolution"),
    Key("limit_train", INT, None, "every training image"),
    Key("limit_test", INT, None, "the whole test split"),
    Key("val_fraction", FLOAT, FinetuneOptions.val_fraction),
    Key("schedule", STR, ",".join(TrainConfig.schedule)),
    Key("min_phase_steps", INT, None, f"one epoch per phase, but at least {PHASE_FLOOR_STEPS} steps"),
    Key("gate_l1", FLOAT, TrainConfig.gate_l1),
    Key("gate_penalty", STR, TrainConfig.gate_penalty),
    Key("batch_size", INT, TrainConfig.batch_size),
    Key("lr_head", FLOAT, TrainConfig.lr_head),
    Key("lr_head_tuning", FLOAT, TrainConfig.lr_head_tuning),
    Key("lr_gates", FLOAT, TrainConfig.lr_gates),
    Key("lr_all", FLOAT, TrainConfig.lr_all),
    Key("seed", INT, TrainConfig.seed),
    Key("device", STR, FinetuneOptions.device),
    Key("checkpoint_every", INT, TrainConfig.checkpoint_every),
    Key("memory_format", STR, TrainConfig.memory_format),
), _check_finetune)


# ---- prune (mirrors cli/prune.py) ---------------------------------------------------------------------
def prune_call(v: dict[str, Any], *, run: Path | None = None,
               show_progress: bool = True) -> tuple[PruneOptions, SettingsSearch | None]:
    """The `PruneOptions` and latency search a [prune] section asks for, as `facompress prune` builds them."""
    budget = parse_budget(v["keep"], v["target_macs"], v["target_params"], v["target_latency_ms"],
                          v["gate_threshold"], v["target_speedup"])
    settings = PruneSettings(keep=budget.keep or PruneSettings.keep, importance=v["importance"], scope=v["scope"],
                             round_to=v["round_to"], ignore=tuple(v["ignore"]), gate_reduction=v["gate_reduction"],
                             gate_score=v["gate_score"], gate_per_mac=v["gate_per_mac"],
                             score_images=v["score_images"])
    latency = latency_target(v["target_latency_ms"], v["target_speedup"], v["backend"], v["batch_size"], v["int8"])
    options = PruneOptions(settings=settings, budget=budget if budget.mode != "keep" else None,
                           recover_epochs=v["recover_epochs"], recover_steps=v["recover_steps"],
                           fade_steps=v["fade_steps"], recover_phase=v["recover_phase"],
                           recover_lr=v["recover_lr"], recover_batch_size=v["recover_batch_size"], run=run,
                           device=v["device"], show_progress=show_progress, memory_format=v["memory_format"],
                           seed=v["seed"], fade_epochs=v["fade_epochs"], distill_weight=v["distill_weight"],
                           distill_temperature=v["distill_temperature"], prune_steps=v["prune_steps"],
                           deep_cut_factor=v["deep_cut_factor"])
    return options, latency


def _check_prune(v: dict[str, Any], trust: bool) -> None:
    prune_call(v)
    check_latency_options(v["backend"], v["batch_size"])  # a typo in backend is an error without a target too
    pick_device(v["device"])


PRUNE = Section("prune", (
    Key("keep", KEEP, None, f"{PruneSettings.keep} of the channels unless another budget is given"),
    Key("target_macs", FLOAT, None, "no MAC budget"),
    Key("target_params", FLOAT, None, "no parameter budget"),
    Key("gate_threshold", FLOAT, NOISE_GATE),
    Key("importance", STR, PruneSettings.importance),
    Key("gate_score", STR, PruneSettings.gate_score),
    Key("gate_per_mac", FLOAT, PruneSettings.gate_per_mac),
    Key("gate_reduction", STR, PruneSettings.gate_reduction),
    Key("score_images", INT, PruneSettings.score_images),
    Key("scope", STR, PruneSettings.scope),
    Key("round_to", INT, PruneSettings.round_to),
    Key("ignore", STR_LIST, list(PruneSettings.ignore)),
    Key("fade_steps", INT, ChainOptions.fade_steps, f"one epoch but at least {FLOOR_STEPS} steps, with importance gate"),
    Key("fade_epochs", INT, ChainOptions.fade_epochs, "fade_steps decides; 0: no fade"),
    Key("recover_steps", INT, ChainOptions.recover_steps, f"none after a fade, else one epoch but at least {FLOOR_STEPS} steps"),
    Key("recover_epochs", INT, ChainOptions.recover_epochs, "recover_steps decides; 0: no recovery"),
    Key("recover_phase", STR, ChainOptions.recover_phase),
    Key("recover_lr", FLOAT, ChainOptions.recover_lr),
    Key("recover_batch_size", INT, ChainOptions.recover_batch_size),
    Key("distill_weight", FLOAT, ChainOptions.distill_weight),
    Key("distill_temperature", FLOAT, ChainOptions.distill_temperature),
    Key("prune_steps", INT, ChainOptions.prune_steps),
    Key("deep_cut_factor", FLOAT, ChainOptions.deep_cut_factor),
    Key("target_latency_ms", FLOAT, None, "no latency target"),
    Key("target_speedup", FLOAT, None, "no speed-up target"),
    Key("int8", BOOL, LatencyTarget.int8),
    Key("backend", STR, LatencyTarget.backend),
    Key("batch_size", INT, LatencyTarget.batch_size),
    Key("device", STR, PruneOptions.device),
    Key("memory_format", STR, PruneOptions.memory_format),
    Key("seed", INT, None, "the fine-tuning's seed"),
), _check_prune)


# ---- export -------------------------------------------------------------------------------------------
def export_calls(v: dict[str, Any]) -> list[ExportOptions]:
    """The exports an [export] section asks for: the dense baseline (plain ONNX, so bench compares like
    with like) when `baseline`, then the chosen model with the section's options."""
    chosen = ExportOptions(model_name=v["model"], opset=v["opset"], int8=v["int8"], int8_format=v["int8_format"],
                           calib_samples=v["calib_samples"], fp16=v["fp16"], torch_program=v["torch"], trt=v["trt"],
                           min_batch=v["min_batch"], opt_batch=v["opt_batch"], max_batch=v["max_batch"],
                           workspace_mb=v["workspace_mb"])
    if not v["baseline"] or v["model"] == BASELINE_MODEL:
        return [chosen]
    return [ExportOptions(model_name=BASELINE_MODEL, opset=v["opset"]), chosen]


def _check_export(v: dict[str, Any], trust: bool) -> None:
    for options in export_calls(v):
        options.check()


EXPORT = Section("export", (
    Key("model", STR, ExportOptions.model_name, "the newest model: pruned"),
    Key("opset", INT, ExportOptions.opset),
    Key("int8", BOOL, ExportOptions.int8),
    Key("int8_format", STR, ExportOptions.int8_format),
    Key("calib_samples", INT, ExportOptions.calib_samples),
    Key("fp16", BOOL, ExportOptions.fp16),
    Key("torch", BOOL, ExportOptions.torch_program),
    Key("trt", BOOL, ExportOptions.trt),
    Key("min_batch", INT, ExportOptions.min_batch),
    Key("opt_batch", INT, ExportOptions.opt_batch),
    Key("max_batch", INT, ExportOptions.max_batch),
    Key("workspace_mb", INT, ExportOptions.workspace_mb),
    Key("baseline", BOOL, True),  # the chain's own: also export the fine-tuned model (`export --model finetuned`)
), _check_export)


# ---- bench --------------------------------------------------------------------------------------------
_BENCH_DEFAULTS = {n: p.default for n, p in inspect.signature(bench_run).parameters.items()}


def bench_kwargs(v: dict[str, Any], *, show_progress: bool = True) -> dict[str, Any]:
    """`bench_run`'s keyword arguments for a [bench] section."""
    return dict(backends=v["backend"], batch_sizes=v["batch_sizes"], warmup=v["warmup"], rounds=v["rounds"],
                sessions=v["sessions"], order=v["order"], seed=v["seed"], eval_limit=v["eval_limit"],
                img_size=v["img_size"], threads=v["threads"], memory_format=v["memory_format"],
                progress=show_progress)


def _check_bench(v: dict[str, Any], trust: bool) -> None:
    """`bench_run`'s own checks, made before the chain starts (it makes them only once it runs)."""
    check_rounds(v["warmup"], v["rounds"], v["order"])
    check_sessions(v["sessions"])
    check_options(v["backend"], v["batch_sizes"] or default_batch_sizes(), v["img_size"] or MIN_IMG_SIZE,
                  v["warmup"], v["rounds"], v["memory_format"])
    if v["img_size"] is not None and not MIN_IMG_SIZE <= v["img_size"] <= MAX_IMG_SIZE:
        raise ConfigError(f"img_size must be in [{MIN_IMG_SIZE}, {MAX_IMG_SIZE}] px (got {v['img_size']})")
    for name in ("eval_limit", "threads"):
        if v[name] is not None and v[name] < 1:
            raise ConfigError(f"{name} must be >= 1 (got {v[name]})")


BENCH = Section("bench", (
    Key("backend", STR_LIST, None, "every backend available here"),
    Key("batch_sizes", INT_LIST, None, "1 and 8; also 64 on a CUDA GPU"),
    Key("warmup", INT, _BENCH_DEFAULTS["warmup"]),
    Key("rounds", INT, _BENCH_DEFAULTS["rounds"]),
    Key("sessions", INT, _BENCH_DEFAULTS["sessions"]),
    Key("order", STR, _BENCH_DEFAULTS["order"]),
    Key("seed", INT, _BENCH_DEFAULTS["seed"]),
    Key("eval_limit", INT, None, "the run's whole test split"),
    Key("img_size", INT, None, "the size the model was fine-tuned at"),
    Key("threads", INT, None, "torch's default, one per core"),
    Key("memory_format", STR, _BENCH_DEFAULTS["memory_format"]),
), _check_bench)

# `facompress report` has no option but --run: its section takes no key.
REPORT = Section("report", (), lambda v, trust: None)

SECTIONS: dict[str, Section] = {s.name: s for s in (FINETUNE, PRUNE, EXPORT, BENCH, REPORT)}
