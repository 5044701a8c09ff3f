"""Layers whose output channels pruning must leave whole, named per block type.

Some blocks tie channels together in ways torch-pruning 1.6.1 cannot follow. ShuffleNetV2 interleaves
the channels of its two branches (a channel shuffle) before the next block splits them again; MaxViT
folds its feature map into windows and grids, reshapes of the spatial axes that torch-pruning reads
as flattening the channels. Channels *inside* such blocks still prune cleanly (ShuffleNetV2's branch
convs, MaxViT's MBConv expansion); the channels a block hands on do not. A rule names, per block
type, the sublayers that write those channels. The pruner leaves their outputs whole, as it leaves
the classifier's: their inputs still shrink with the layers that feed them.

>>> keep_whole(torchvision.models.shufflenet_v2_x0_5())[:3]
['stage2.0.branch1.2', 'stage2.0.branch2.5', 'stage2.1.branch2.5']

Rules are keyed by class path (module and qualified name), matched along each module's MRO, so
looking them up imports nothing and subclasses (`fa_compress.models.shufflenet`'s traceable block)
follow their base class's rule. A block of your own:

>>> register_keep_whole("nets.MixBlock", ("out_conv",))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import InternalError

if TYPE_CHECKING:
    from torch import nn

_RULES: dict[str, tuple[str, ...]] = {
    # ShuffleNetV2: the 1x1 convs writing the two halves of the concat that the shuffle interleaves.
    # A stride-2 block's depthwise branch1.0 shares its channels with the block's input, so it stays
    # whole after a shuffle and prunes with the stem in the first block; it needs no rule.
    "torchvision.models.shufflenetv2.InvertedResidual": ("branch1.2", "branch2.5"),
    # MaxViT: every layer writing the residual stream that the window and grid partitions reshape,
    # and the q/k/v projection, which is viewed into heads.
    "torchvision.models.maxvit.MaxVit": ("stem.1.0",),
    "torchvision.models.maxvit.MBConv": ("proj.1", "layers.conv_c"),
    "torchvision.models.maxvit.RelativePositionalMultiHeadAttention": ("to_qkv", "merge"),
    "torchvision.models.maxvit.PartitionAttentionLayer": ("mlp_layer.3",),
    # timm's CSPNet stage halves its expansion by a stored size, and torch-pruning maps indices across
    # that split wrongly (IndexError while ranking): the expansion stays whole (timm_traceable.py).
    "timm.models.cspnet.CrossStage": ("conv_exp.conv", "conv_exp.bn"),
    # timm's MixNet: a mixed conv of ordinary convs concatenates their outputs, and torch-pruning maps that
    # concatenation's channels wrongly (a pruned model that did not run); its depthwise mixed convs prune.
    "fa_compress.models.timm_traceable.TraceableMixedPointwise": tuple(str(i) for i in range(8)),
}


# Blocks torch-pruning cannot group at all, by class path -> why; a model holding one is refused before
# any training (`unprunable`).
_REFUSED: dict[str, str] = {
    # timm's RexNet adds its shortcut into a slice of the block's channels (x[:, :in_channels] + shortcut,
    # concatenated with the rest); grouping the slices did not finish in 15 min on timm:rexnet_100.
    "timm.models.rexnet.LinearBottleneck": ("adds its shortcut into a slice of its channels, which "
                                            "torch-pruning's dependency graph cannot group in bounded time"),
}


def unprunable(model: nn.Module) -> tuple[str, str] | None:
    """(name, why) of the first block of `model` torch-pruning cannot group, or None."""
    for name, module in model.named_modules():
        for cls in type(module).__mro__:
            reason = _REFUSED.get(f"{cls.__module__}.{cls.__qualname__}")
            if reason is not None:
                return name, f"{type(module).__name__} {reason}"
    return None


def register_keep_whole(class_path: str, sublayers: tuple[str, ...]) -> None:
    """Keep the outputs of `sublayers` (dotted names inside the block) whole in every block of class
    `class_path` ("package.module.ClassName") or of a subclass."""
    if class_path in _RULES:
        raise InternalError(f"a keep-whole rule for {class_path} is registered twice")
    _RULES[class_path] = tuple(sublayers)


def _rule_of(module: nn.Module) -> tuple[str, ...]:
    for cls in type(module).__mro__:
        rule = _RULES.get(f"{cls.__module__}.{cls.__qualname__}")
        if rule is not None:
            return rule
    return ()


def keep_whole(model: nn.Module) -> list[str]:
    """Dotted names of the layers in `model` whose output channels must not be pruned, in model
    order; [] for a model without such blocks. A rule's sublayer that a block lacks is skipped
    (ShuffleNetV2's stride-1 blocks have an empty `branch1`)."""
    modules = dict(model.named_modules())
    names: list[str] = []
    for block_name, block in modules.items():
        for sub in _rule_of(block):
            name = f"{block_name}.{sub}" if block_name else sub
            if name in modules and name not in names:
                names.append(name)
    return names
