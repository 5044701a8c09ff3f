"""Where facompress puts its gates in every torchvision classifier, from a meta-device build (no weights).

    .venv/bin/python -m benchmarks.gate_sites            # one line per model, then the totals
    .venv/bin/python -m benchmarks.gate_sites --cut convnext_tiny timm:mixnet_s    # exact cut check

Prints, per model, how many gates go into BatchNorms, LayerNorms over channels, convs no norm follows and
ConvNeXt block MLPs (`fa_compress.gates.sites`), and checks the promise that a model with BatchNorm gets exactly its
BatchNorm gates (the placement it had before norm-free gates existed). `--cut` checks the exact cut
instead: random weights and gates, a plan keeping 0.6 of the channels by gate value, the planned gates set
to 0, then `cut_channels_exactly`; it prints the largest output change relative to the largest output
(32 px, 2 images, 2 seeds). See docs/decisions/norm-free-gates.md.
"""

from __future__ import annotations

import argparse
import time


def cut_check(name: str, seed: int) -> float:
    """Relative output change of cutting exactly the channels whose gates a plan set to 0."""
    import torch

    from fa_compress.gates import insert_gates, iter_gates
    from fa_compress.models import build_model, get_head
    from fa_compress.pruning.budget import Budget
    from fa_compress.pruning.fade import plan_cut
    from fa_compress.pruning.pruner import PruneSettings, cut_channels_exactly

    torch.manual_seed(seed)
    model = insert_gates(build_model(name, 4, weights="none")).eval()
    for _, gate in iter_gates(model):
        gate.gate.data.uniform_(0, 1)
    example = torch.zeros(1, 3, 32, 32)
    masks, _ = plan_cut(model, get_head(model, name), PruneSettings(gate_score="value"), example, Budget(keep=0.6))
    with torch.no_grad():
        for gate_name, gate in iter_gates(model):
            gate.gate[masks[gate_name]] = 0.0
    x = torch.randn(2, 3, 32, 32)
    expected = model(x).detach()  # (2, 4)
    cut = cut_channels_exactly(model, example, masks)(x).detach()  # (2, 4); the graph build needs autograd
    return float((cut - expected).abs().max() / expected.abs().max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cut", nargs="*", help="check the exact cut of these models instead")
    args = parser.parse_args()
    if args.cut:
        for name in args.cut:
            errs = [cut_check(name, seed) for seed in (0, 1)]
            print(f"{name}: relative output change of the exact cut: {', '.join(f'{e:.1e}' for e in errs)}")
        return
    from torch import nn

    from fa_compress.gates import find_gate_sites
    from fa_compress.models._discover import build_on_meta
    from fa_compress.models.torchvision_models import _construct, zoo_names

    with_bn = unchanged = 0
    for name in zoo_names():
        t0 = time.perf_counter()
        model = build_on_meta(lambda: _construct(name, imagenet=False))
        sites = find_gate_sites(model)
        batchnorms = [n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
        if batchnorms:
            with_bn += 1
            unchanged += (sites.batchnorms == batchnorms and not sites.layernorms and not sites.convs
                          and not sites.linears)
        print(f"{name:22s} batchnorm {len(sites.batchnorms):4d}  layernorm {len(sites.layernorms):3d}  "
              f"conv {len(sites.convs):3d}  mlp {len(sites.linears):3d}  ({time.perf_counter() - t0:.2f} s)",
              flush=True)
    print(f"models with BatchNorm2d gated exactly at their BatchNorms: {unchanged} of {with_bn}")


if __name__ == "__main__":
    main()
