"""Process-group set-up for torchrun: NCCL on CUDA, gloo on CPU; one process is a world of one."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from ..errors import ConfigError, MissingDependencyError
from ..errors import ConfigError


@dataclass(frozen=True)
class Context:
    """Where this process trains: its device and its place among the ranks."""

    device: torch.device
    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def pick_device(requested: str = "auto") -> torch.device:
    """`auto` -> cuda when available else cpu; an explicit `cuda` without a GPU is a user error."""

    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise MissingDependencyError("device cuda was asked but no CUDA GPU is visible; use device cpu")
    try:
        return torch.device(requested)
    except RuntimeError:
        raise ConfigError(f"unknown device {requested!r}; use auto, cpu, cuda or cuda:N") from None


def init_context(device: str = "auto") -> Context:
    """Join the torchrun process group when launched by torchrun, else a single-process context."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context(device=pick_device(device))
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    if dev.type == "cpu":  # processes share the cores: one process per core, not cores² threads
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", world))))
    return Context(device=dev, rank=rank, world=world)


def rank_batch_size(global_batch: int, ctx: Context) -> int:
    """Each rank's share of the global batch; with rank r taking every world-th image of the
    same permutation, the ranks together see exactly the batches one process would."""

    if global_batch % ctx.world:
        raise ConfigError(f"batch_size {global_batch} must be divisible by the {ctx.world} processes")
    return global_batch // ctx.world


def all_gather_rows(ctx: Context, rows: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    """Assemble per-rank rows (with their dataset indices) into one (n, ...) tensor on every rank."""
    if not ctx.distributed:
        out = torch.empty((n, *rows.shape[1:]), dtype=rows.dtype, device=rows.device)
        out[index.to(rows.device)] = rows
        return out
    parts = [torch.empty_like(rows) for _ in range(ctx.world)]
    idx_parts = [torch.empty_like(index) for _ in range(ctx.world)]
    dist.all_gather(parts, rows.contiguous())
    dist.all_gather(idx_parts, index.contiguous())
    out = torch.empty((n, *rows.shape[1:]), dtype=rows.dtype, device=rows.device)
    for part, idx in zip(parts, idx_parts):
        out[idx.to(rows.device)] = part
    return out


def all_reduce_sum(ctx: Context, *values: float) -> list[float]:
    """Sum scalars over all ranks (identity on one process)."""
    if not ctx.distributed:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def barrier(ctx: Context) -> None:
    if ctx.distributed:
        dist.barrier()


def shutdown(ctx: Context) -> None:
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()
