"""Structural pruning with torch-pruning's dependency graph, ranked by any criterion."""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch_pruning as tp
from torch import nn

from ..errors import ConfigError, NotFoundError, unknown_name
from ..gates import fold_gates, has_gates
from ..gates.costs import conv_output_areas
from ..gates.graph import GATE_PRUNERS, graph_time_limit, layernorm_pruners, pruner_of, traceable
from ..models.keep_whole import keep_whole
from .gate_scores import DEFAULT_SCORE_IMAGES, accumulate_gate_taylor, has_taylor_scores
from .importance import (DEFAULT_GATE_SCORE, IMPORTANCES, NEEDS_GATES, NEEDS_GRADIENTS, REDUCTIONS,
                         SCORES, feasible_ratio, make_importance)
from ..gates import iter_gates
from ..errors import InternalError
from ..train.memory_format import prepare, to_format

SCOPES = ("global", "layer")
# Gate Taylor scores divided by sqrt(each channel's MAC cost): docs/decisions/gate-cost-exponent.md.
DEFAULT_GATE_PER_MAC = 0.5
# Channel counts in multiples of 16 fill onnxruntime's NCHWc blocks: docs/decisions/round-to-16.md.
DEFAULT_ROUND_TO = 16


@dataclass(frozen=True)
class PruneSettings:
    """How to prune. `keep` is the fraction of prunable channels that stays."""

    keep: float = 0.6
    importance: str = "gate"
    scope: str = "global"
    round_to: int = DEFAULT_ROUND_TO  # channel counts in multiples of this (SIMD blocks, tensor cores)
    max_layer_prune: float = 0.9  # no layer loses more than 90% of its channels
    ignore: tuple[str, ...] = ()
    gate_reduction: str = "auto"  # how coupled layers' gate scores combine; auto: sum for taylor, else mean
    gate_score: str = DEFAULT_GATE_SCORE  # taylor (|g*dL/dg|), value (|g|) or scale; see importance.py
    gate_per_mac: float = DEFAULT_GATE_PER_MAC  # divide each channel's score by (its MAC cost) ** this
    score_images: int = DEFAULT_SCORE_IMAGES  # fixed-seed training images behind gradient scores
    seed: int = 0                 # picks those images (and torch-pruning's `random` criterion)

    def __post_init__(self) -> None:
        if not 0 < self.keep <= 1:
            raise ConfigError(f"keep must be in (0, 1] (got {self.keep}); e.g. keep 0.6 keeps 60% of channels")
        if self.importance not in IMPORTANCES:
            raise unknown_name("importance", self.importance, IMPORTANCES)
        if self.gate_reduction != "auto" and self.gate_reduction not in REDUCTIONS:
            raise unknown_name("gate reduction", self.gate_reduction, ("auto", *REDUCTIONS))
        if self.gate_score not in SCORES:
            raise unknown_name("gate score", self.gate_score, SCORES)
        if not 0 <= self.gate_per_mac <= 2:
            raise ConfigError(f"gate_per_mac must be in [0, 2] (got {self.gate_per_mac})")
        if self.score_images < 1:
            raise ConfigError(f"score_images must be >= 1 (got {self.score_images})")
        if self.scope not in SCOPES:
            raise ConfigError(f"scope must be one of {', '.join(SCOPES)} (got {self.scope!r})")
        if self.round_to < 1:
            raise ConfigError(f"round_to must be >= 1 (got {self.round_to})")
        if not 0 < self.max_layer_prune < 1:
            raise ConfigError(f"max_layer_prune must be in (0, 1) (got {self.max_layer_prune})")


def reduction_of(settings: PruneSettings) -> str:
    """The gate reduction in force: `auto` sums loss-change scores (taylor) and averages values."""
    if settings.gate_reduction != "auto":
        return settings.gate_reduction
    return "sum" if settings.gate_score == "taylor" else "mean"


def needs_gate_scores(settings: PruneSettings) -> bool:
    """True when pruning with `settings` ranks by the gates' Taylor scores."""
    return settings.importance == "gate" and settings.gate_score == "taylor"


def channel_counts(model: nn.Module) -> dict[str, int]:
    """Output channels of every conv (subclasses included), by module name."""
    return {name: m.out_channels for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}


def _resolve_ignored(model: nn.Module, names: Sequence[str], head: nn.Module) -> list[nn.Module]:
    modules = dict(model.named_modules())
    ignored = [head, *(modules[n] for n in keep_whole(model))]  # see models/keep_whole.py
    for name in names:
        if name not in modules:
            close = difflib.get_close_matches(name, [n for n in modules if n], n=4, cutoff=0.5)
            hint = f"; close matches: {', '.join(close)}" if close else ""
            raise NotFoundError(f"ignore {name!r}: no such layer in the model{hint}")
        ignored.append(modules[name])
    return ignored


def check_fits(model: nn.Module, head: nn.Module, settings: PruneSettings) -> None:
    """Raise for settings this model cannot take (a gate criterion without gates, an `--ignore` name it
    lacks), so callers can fail before any work is done."""
    if settings.importance in NEEDS_GATES and not has_gates(model):
        without = ", ".join(i for i in IMPORTANCES if i not in NEEDS_GATES)
        raise ConfigError(f"importance {settings.importance} needs a gated model, and this one has no gates; "
                          f"criteria that work without gates: {without}")
    _resolve_ignored(model, settings.ignore, head)


def prune_model(model: nn.Module, head: nn.Module, settings: PruneSettings, example: torch.Tensor,
                gradient_fn: Callable[[nn.Module], None] | None = None,
                score_fn: Callable[[nn.Module], None] | None = None) -> nn.Module:
    """Remove the lowest-ranked channels of `model` in place and fold its gates; return it.

    `gradient_fn(model)` must run forward+backward on training data when the criterion needs
    gradients (`taylor`); `score_fn(model)` must set the gates' Taylor scores when the gate score is
    `taylor` and the model carries none yet (see `scorers`). Raises `ConfigError` when the keep
    ratio would empty a layer.
    """
    check_fits(model, head, settings)
    if needs_gate_scores(settings) and not has_taylor_scores(model):
        if score_fn is None:
            raise ConfigError("the gate score `taylor` needs training images to score the gates from")
        score_fn(model)
    if settings.importance != "gate" and has_gates(model):
        fold_gates(model)  # exact; torch-pruning's own criteria then see plain BatchNorms
    ignored = _resolve_ignored(model, settings.ignore, head)  # after folding: it replaces the BatchNorms
    areas = None
    if settings.gate_per_mac and settings.importance == "gate":
        areas = conv_output_areas(model, example)
    importance = make_importance(settings.importance, reduction=reduction_of(settings), score=settings.gate_score,
                                 per_mac=settings.gate_per_mac if settings.importance == "gate" else 0.0,
                                 areas=areas, max_prune=settings.max_layer_prune, round_to=settings.round_to)
    with traceable(model), graph_time_limit():
        pruner = tp.pruner.MetaPruner(
            model, example, importance=importance, pruning_ratio=1 - settings.keep,
            global_pruning=settings.scope == "global", max_pruning_ratio=settings.max_layer_prune,
            round_to=settings.round_to if settings.round_to > 1 else None, ignored_layers=ignored,
            customized_pruners=GATE_PRUNERS if settings.importance == "gate" else layernorm_pruners(model))
    if settings.importance in NEEDS_GRADIENTS:
        if gradient_fn is not None:
            model.zero_grad()
            with traceable(model):  # frozen layers would get no gradient, and torch-pruning's taylor fails
                gradient_fn(model)
        elif not any(p.grad is not None for p in model.parameters()):  # none computed beforehand either
            raise ConfigError(f"importance {settings.importance} needs gradients from training data")
    ratio = feasible_ratio(pruner, importance, 1 - settings.keep)
    if ratio < 1 - settings.keep:  # below what the per-layer cap allows: prune the most it allows
        pruner.per_step_pruning_ratio = pruner.iterative_pruning_ratio_scheduler(ratio, pruner.iterative_steps)
    if settings.keep < 1:
        with torch.random.fork_rng(devices=[]), _refusals(pruner.DG) as refused:
            torch.manual_seed(settings.seed)  # the `random` criterion draws here
            pruner.step()
        if refused.layers and not refused.cut:  # a model returned unpruned, silently: say why instead
            raise ConfigError(refused.message(model, settings.keep))
    fold_gates(model)
    _check_runs(model, example)
    return model


def cut_channels_exactly(model: nn.Module, example: torch.Tensor, masks: dict[str, torch.Tensor]) -> nn.Module:
    """Remove exactly the channels `masks` marks (gate name -> (C,) bool, True = cut), with everything
    torch-pruning's dependency graph couples to them, then fold the gates; in place. No ranking runs,
    so no tie or rounding can change the set (the masks come from `fade.plan_cut`)."""
    with traceable(model), graph_time_limit():
        graph = tp.DependencyGraph().build_dependency(model, example, customized_pruners=GATE_PRUNERS)
    for _, m in iter_gates(model):
        m.channel_origin = torch.arange(m.num_features)
    for name, m in iter_gates(model):
        origin = m.channel_origin.tolist()  # a coupled gate pruned earlier in this loop has fewer channels
        idxs = [i for i, o in enumerate(origin) if bool(masks[name][o])]
        if idxs:
            graph.get_pruning_group(m, pruner_of(m).prune_out_channels, idxs).prune()
    for _, m in iter_gates(model):
        m.channel_origin = None
    fold_gates(model)
    _check_runs(model, example)
    return model


@dataclass
class _Refusals:
    """The layers torch-pruning refused to empty (skipping their whole group), and the channels it cut."""

    layers: list[nn.Module] = field(default_factory=list)
    cut: int = 0

    def message(self, model: nn.Module, keep: float) -> str:
        """What the user is told: the layers each cut would have emptied, and what to change."""
        names = {m: n for n, m in model.named_modules()}
        emptied = sorted({names.get(m, type(m).__name__) for m in self.layers})
        shown = ", ".join(emptied[:3]) + (f" and {len(emptied) - 3} more" if len(emptied) > 3 else "")
        return (f"keep {keep} removed no channel: torch-pruning refused every cut the ranking chose, as each "
                f"would empty a layer ({shown}); leave such a layer whole with ignore (e.g. ignore "
                f"{emptied[0] if emptied else 'LAYER'}) so the cut goes elsewhere, or raise keep")


def _channels(graph: tp.DependencyGraph, dep) -> int | None:
    """Channels of the layer `dep` cuts, on the side it cuts (None where torch-pruning cannot say)."""
    if graph.is_out_channel_pruning_fn(dep.handler):
        return graph.get_out_channels(dep.target.module)
    if graph.is_in_channel_pruning_fn(dep.handler):
        return graph.get_in_channels(dep.target.module)
    return None


@contextmanager
def _refusals(graph: tp.DependencyGraph) -> Iterator[_Refusals]:
    """Record, while inside, the groups torch-pruning's `check_pruning_group` refuses (a cut that would
    empty a layer, which it then skips silently) and the channels of the groups it accepts."""
    refusals, check = _Refusals(), graph.check_pruning_group

    def recording(group) -> bool:
        ok = check(group)
        if ok:
            refusals.cut += len(group[0].idxs)
        else:
            refusals.layers += [dep.target.module for dep, idxs in group
                                if (n := _channels(graph, dep)) is not None and len(idxs) >= n]
        return ok

    graph.check_pruning_group = recording
    try:
        yield refusals
    finally:
        del graph.check_pruning_group  # the class's method again


def _check_runs(model: nn.Module, example: torch.Tensor) -> None:
    empty = [n for n, c in channel_counts(model).items() if c < 1]
    if empty:
        raise ConfigError(f"the keep ratio leaves layer {empty[0]} with no channel; raise keep")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(example)
    except RuntimeError as exc:  # a pruned model that does not run is our bug, not the user's

        raise InternalError(f"the pruned model does not run: {exc}") from exc
    finally:
        model.train(was_training)


def taylor_gradients(dataset, device: torch.device | str = "cpu", images: int = DEFAULT_SCORE_IMAGES,
                     batch_size: int = 32, seed: int = 0,
                     memory_format: str = "auto") -> Callable[[nn.Module], None]:
    """A `gradient_fn` for `prune_model`: forward + backward of the cross-entropy over a fixed,
    seeded sample of `images` images of `dataset` (what torch-pruning's `taylor` scores from).

    The sample and the dataset's augmentation RNG are seeded, so the same model gets the same ranking.
    """
    from torch.utils.data import DataLoader

    from .gate_scores import score_subset

    def run(model: nn.Module) -> None:
        model.eval()
        fmt = prepare(model, memory_format, device)  # in place: torch-pruning's graph keeps the parameters
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for x, y in DataLoader(score_subset(dataset, images, seed), batch_size=batch_size, shuffle=False):
                torch.nn.functional.cross_entropy(model(to_format(x.to(device), fmt)), y.to(device)).backward()

    return run


def gate_scorer(dataset, device: torch.device | str = "cpu", images: int = DEFAULT_SCORE_IMAGES,
                seed: int = 0, memory_format: str = "auto") -> Callable[[nn.Module], None]:
    """A `score_fn` for `prune_model`: the gates' Taylor scores over a fixed, seeded sample."""

    def run(model: nn.Module) -> None:
        fmt = prepare(model, memory_format, device)
        accumulate_gate_taylor(model, dataset, images=images, seed=seed, device=device,
                               prepare=lambda x: to_format(x, fmt))

    return run


def scorers(settings: PruneSettings, dataset, device: torch.device | str = "cpu"):
    """(gradient_fn, score_fn) for `prune_model` from the training split, as `settings` asks."""
    return (taylor_gradients(dataset, device, images=settings.score_images, seed=settings.seed),
            gate_scorer(dataset, device, images=settings.score_images, seed=settings.seed))  # memory format: auto


def timed_prune(model: nn.Module, head: nn.Module, settings: PruneSettings, example: torch.Tensor,
                gradient_fn: Callable[[nn.Module], None] | None = None,
                score_fn: Callable[[nn.Module], None] | None = None) -> tuple[nn.Module, float]:
    """`prune_model` plus its wall time in seconds."""
    t0 = time.perf_counter()
    model = prune_model(model, head, settings, example, gradient_fn, score_fn)
    return model, time.perf_counter() - t0
