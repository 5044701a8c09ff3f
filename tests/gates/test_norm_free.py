"""Gates where there is no BatchNorm: after a LayerNorm over channels, in a conv no norm follows, on the hidden
channels of a ConvNeXt block's MLP; 1x1-conv classifier heads; BatchNorm models gated exactly as before."""

import copy

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models.convnext import CNBlock, LayerNorm2d

from fa_compress.gates import (GateSites, GatedBatchNorm2d, GatedConv2d, GatedLayerNorm, GatedLinear, find_gate_sites,
                               fold_gates, gate_ranking, has_gates, insert_gates, iter_gates)
from fa_compress.gates.costs import gate_costs
from fa_compress.gates.graph import GATE_PRUNERS
from fa_compress.gates.norm_free import gate_layernorm
from fa_compress.models import IMAGENET_NORMALIZATION, ModelSpec, build_model, replace_head
from fa_compress.models._discover import build_on_meta, find_head
from fa_compress.models.structure import apply_structure, check_rebuildable, describe_structure
from fa_compress.pruning.gate_scores import accumulate_gate_taylor
from fa_compress.pruning.budget import Budget
from fa_compress.pruning.fade import plan_cut
from fa_compress.pruning.pruner import PruneSettings, cut_channels_exactly, prune_model
from tests.conftest import random_gates

torch.manual_seed(0)


def _convnext_like() -> nn.Module:
    """A ConvNeXt stem (conv + LayerNorm2d), one block (dwconv, permute, LayerNorm, MLP, layer scale) and
    a classifier that normalises first (as ConvNeXt's does), with non-trivial LayerNorm affines."""
    model = nn.Sequential(nn.Conv2d(3, 16, 4, stride=4), LayerNorm2d(16), CNBlock(16, 0.5, 0.0), LayerNorm2d(16),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 5)).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    return model


def _vgg_like() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(16, 5)).eval()


def _conv_head() -> nn.Module:
    """Norm-free features, global pooling, then a 1x1-conv classifier and a flatten (as in DLA)."""
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Conv2d(16, 5, 1), nn.Flatten()).eval()


class _ChannelsLastMlp(nn.Module):
    """A conv, then a ConvNeXt block's MLP on its channels-last output (LayerNorm, Linear, `act`, Linear), then a
    classifier; `reuse`: the hidden features are also added to the output (used twice); `tokens`: the MLP runs on
    a transformer's (N, H*W, C) tokens instead."""

    def __init__(self, act: nn.Module, reuse: bool = False, tokens: bool = False) -> None:
        super().__init__()
        self.conv, self.norm = nn.Conv2d(3, 8, 4, stride=4), nn.LayerNorm(8)
        self.fc1, self.act, self.fc2, self.head = nn.Linear(8, 32), act, nn.Linear(32, 8), nn.Linear(8, 5)
        self.reuse, self.tokens = reuse, tokens

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)  # (N, C, H, W)
        x = x.flatten(2).transpose(1, 2) if self.tokens else x.permute(0, 2, 3, 1)  # (N, H*W, C) or (N, H, W, C)
        hidden = self.act(self.fc1(self.norm(x)))  # (..., 4C)
        x = self.fc2(hidden) + (hidden[..., :8] if self.reuse else 0)  # (..., C)
        return self.head(x.flatten(1, -2).mean(1))  # (N, positions, C) -> (N, C) -> (N, 5)


def _relative_change(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


@pytest.mark.parametrize("build, gates", [(_convnext_like, {"1": GatedLayerNorm, "2.block.2": GatedLayerNorm,
                                                             "2.block.3": GatedLinear, "3": GatedLayerNorm}),
                                          (_vgg_like, {"0": GatedConv2d, "2": GatedConv2d, "5": GatedConv2d}),
                                          (_conv_head, {"0": GatedConv2d, "2": GatedConv2d})])
def test_gates_go_where_no_batchnorm_is_and_start_exact(build, gates):
    model = build()
    x = torch.randn(2, 3, 32, 32)
    expected = model(x)
    gated = insert_gates(copy.deepcopy(model)).eval()
    assert {name: type(m) for name, m in iter_gates(gated)} == gates  # the classifier is never gated
    torch.testing.assert_close(gated(x), expected, rtol=0, atol=0)
    assert set(gated.state_dict()) == set(model.state_dict()) | {f"{n}.gate" for n in gates}


@pytest.mark.parametrize("build", [_convnext_like, _vgg_like, _conv_head])
def test_fold_is_exact_and_restores_the_original_classes(build):
    model = build()
    gated = random_gates(insert_gates(copy.deepcopy(model)), seed=2).eval()
    x = torch.randn(3, 3, 32, 32)
    before = gated(x)
    folded = fold_gates(gated)
    assert not has_gates(folded)
    assert [type(m) for m in folded.modules()] == [type(m) for m in model.modules()]
    assert _relative_change(folded(x), before) <= 1e-5
    assert _relative_change(model(x), before) > 1e-3  # the gates did change the output


def test_the_layernorm_gate_scales_the_normalised_channels():
    ln = LayerNorm2d(6)
    model = nn.Sequential(nn.Conv2d(3, 6, 1), ln, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 2))
    gated = insert_gates(model)[1]
    with torch.no_grad():
        gated.gate.copy_(torch.arange(1.0, 7.0))
    x = torch.randn(2, 6, 4, 4)
    expected = LayerNorm2d(6)(x) * torch.arange(1.0, 7.0).view(1, -1, 1, 1)
    torch.testing.assert_close(gated(x), expected)


def test_the_mlp_gate_scales_hidden_channels_before_the_activation_and_folds_exactly():
    model = insert_gates(_convnext_like())
    fc1 = model[2].block[3]
    plain = nn.Linear(16, 64)
    plain.load_state_dict({k: v for k, v in fc1.state_dict().items() if k != "gate"})
    x = torch.randn(2, 4, 4, 16)  # (N, H, W, C)
    torch.testing.assert_close(fc1(x), plain(x), rtol=0, atol=0)  # a gate of 1 changes nothing, bit for bit
    gate = torch.rand(64) * 2
    with torch.no_grad():
        fc1.gate.copy_(gate)
        fc1.gate[5] = 0.0
    torch.testing.assert_close(fc1(x), plain(x) * fc1.gate.detach())  # (N, H, W, 4C) * (4C,)
    assert torch.all(model[2].block[4](fc1(x))[..., 5] == 0)  # GELU(0) = 0: the next Linear sees nothing
    folded = fc1.folded()
    assert type(folded) is nn.Linear and not hasattr(folded, "gate")
    assert _relative_change(folded(x), fc1(x)) <= 1e-6


@pytest.mark.parametrize("act, reuse, tokens, gated", [
    (nn.GELU(), False, False, ["fc1"]), (nn.ReLU(), False, False, ["fc1"]), (nn.Sigmoid(), False, False, []),
    (nn.Identity(), False, False, []), (nn.GELU(), True, False, []), (nn.GELU(), False, True, [])])
def test_only_a_convnext_style_mlp_gets_hidden_channel_gates(act, reuse, tokens, gated):
    """Gated: a Linear on a channel LayerNorm's output whose output goes only through activations that are 0 at
    0 into one Linear. Not gated: a sigmoid (0.5 at 0), no activation, hidden features used twice, MLPs on
    transformer tokens, and the classifier."""
    model = _ChannelsLastMlp(act, reuse, tokens).eval()
    sites = find_gate_sites(model)
    assert sites.linears == gated and "head" not in sites.linears
    assert sites.layernorms == ({} if tokens else {"norm": False})
    x = torch.randn(2, 3, 32, 32)
    expected = model(x)
    torch.testing.assert_close(insert_gates(model)(x), expected, rtol=0, atol=0)


@pytest.mark.parametrize("name, blocks", [("swin_t", 0), ("maxvit_t", 0), ("convnext_tiny", 18)])
def test_transformer_mlps_and_classifiers_never_get_hidden_channel_gates(name, blocks):
    model = build_on_meta(lambda: getattr(torchvision.models, name)())
    linears = find_gate_sites(model).linears
    assert len(linears) == blocks and all(n.endswith(".block.3") for n in linears)  # ConvNeXt's pwconv1 only


def test_timm_convnext_gates_its_block_mlps_but_not_its_mlp_head_or_a_grn_mlp():
    timm = pytest.importorskip("timm")
    model = build_on_meta(lambda: timm.create_model("convnext_atto", conv_mlp=False, head_hidden_size=32))
    linears = find_gate_sites(model).linears
    assert len(linears) == 2 + 2 + 6 + 2 and all(n.endswith(".mlp.fc1") for n in linears)  # not head.pre_logits.fc
    grn = build_on_meta(lambda: timm.create_model("convnextv2_atto", conv_mlp=False))  # GELU, then GRN, then fc2
    assert find_gate_sites(grn).linears == []  # a GRN mixes channels: a zero gate would not cut exactly


def test_a_state_saved_before_mlp_gates_existed_loads_without_them():
    old = insert_gates(_convnext_like())
    old[2].block[3] = old[2].block[3].folded()  # what a ConvNeXt file held before its MLPs were gated
    model = insert_gates(_convnext_like(), like=old.state_dict())
    assert type(model[2].block[3]) is nn.Linear and isinstance(model[2].block[2], GatedLayerNorm)
    model.load_state_dict(old.state_dict(), strict=True)
    today = insert_gates(_convnext_like()).state_dict()
    assert isinstance(insert_gates(_convnext_like(), like=today)[2].block[3], GatedLinear)


def test_gate_costs_count_the_macs_of_each_gated_layers_own_output_channels():
    """A gated conv or Linear also sits in the group of its input channels; that group's cost is not its gate's."""
    vgg = {n: sorted(set(c.tolist())) for n, c in gate_costs(insert_gates(_vgg_like()), 32).items()}
    # a filter at its output size + its input slice of the next layer: conv 0 (3x3x3, 32x32) + conv 2 (3x3x16,
    # 32x32); conv 2 (3x3x8, 32x32) + conv 5 (3x3x16, 16x16); conv 5 (3x3x16, 16x16) + the head (5 outputs)
    assert vgg == {"0": [27 * 1024 + 144 * 1024], "2": [72 * 1024 + 144 * 256], "5": [144 * 256 + 5]}
    convnext = gate_costs(insert_gates(_convnext_like()), 32)
    assert set(convnext["2.block.3"].tolist()) == {2 * 16 * 64}  # fc1's row and fc2's column, 16 wide, at 8x8


def test_fade_drives_a_channel_to_zero_like_a_zero_gate():
    gated = insert_gates(_vgg_like())
    conv = gated[2]
    x = torch.randn(2, 3, 16, 16)
    conv.fade = torch.ones(16)
    conv.fade[3] = 0.0
    faded = gated[:4](x)
    conv.fade = None
    assert torch.all(faded[:, 3] == 0) and faded[:, 4].abs().sum() > 0
    with torch.no_grad():
        conv.gate[3] = 0.0
    torch.testing.assert_close(gated[:4](x), faded, rtol=0, atol=0)


def test_a_model_mixing_batchnorm_and_norm_free_convs_gates_both():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 16, 3), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4)).eval()
    x = torch.randn(2, 3, 16, 16)
    expected = model(x)
    gated = insert_gates(model).eval()
    assert {n: type(m) for n, m in iter_gates(gated)} == {"1": GatedBatchNorm2d, "3": GatedConv2d}
    assert type(gated[0]) is nn.Conv2d  # its BatchNorm carries its gate
    torch.testing.assert_close(gated(x), expected, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small", "densenet121", "efficientnet_b0", "maxvit_t"])
def test_batchnorm_models_keep_exactly_their_batchnorm_gates(name):
    """Squeeze-and-excitation convs, DenseNet's concatenated convs and MaxViT's attention LayerNorms stay ungated."""
    model = build_on_meta(lambda: getattr(torchvision.models, name)())
    sites = find_gate_sites(model)
    assert sites.layernorms == {} and sites.convs == [] and sites.linears == []
    assert sites.batchnorms == [n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]


def test_efficientnet_lite0_gates_exactly_its_batchnorms():
    model = build_on_meta(lambda: build_model("efficientnet_lite0", num_classes=10, weights="none"))
    gated = [n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(gated) == 49  # the stem's, two per block (three where it expands) and the head conv's
    assert find_gate_sites(model) == GateSites(batchnorms=gated)


def test_a_batchnorm_that_applies_its_activation_keeps_it_when_gated_and_folded():
    timm = pytest.importorskip("timm")
    model = timm.create_model("efficientnet_b0", pretrained=False, num_classes=4).eval()
    x = torch.randn(2, 3, 32, 32)
    expected = model(x)
    gated = insert_gates(copy.deepcopy(model)).eval()
    torch.testing.assert_close(gated(x), expected, rtol=0, atol=0)
    folded = fold_gates(random_gates(gated, seed=3)).eval()
    assert type(folded.bn1) is type(model.bn1) and isinstance(folded.bn1.act, nn.SiLU)


def test_a_1x1_conv_classifier_is_found_and_replaced():
    model = _conv_head()
    assert find_head(model, 32, "the test model") == "5"
    spec = ModelSpec("conv_head", lambda _: _conv_head(), "5", IMAGENET_NORMALIZATION)
    head = replace_head(model, spec, num_classes=3)
    assert isinstance(head, nn.Conv2d) and head.out_channels == 3 and model[5] is head
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 3)


def test_squeezenet_gets_a_fresh_conv_classifier_for_the_classes_asked():
    model = build_model("squeezenet1_1", num_classes=7, weights="none").eval()
    assert model.classifier[1].out_channels == 7 and model(torch.randn(1, 3, 64, 64)).shape == (1, 7)
    gated = insert_gates(model)
    assert "classifier.1" not in dict(iter_gates(gated)) and len(list(iter_gates(gated))) == 25


def test_taylor_scores_are_non_zero_for_gates_after_layernorm_and_on_mlp_hidden_channels():
    model = insert_gates(_convnext_like())
    data = torch.utils.data.TensorDataset(torch.randn(16, 3, 32, 32), torch.randint(0, 5, (16,)))
    assert accumulate_gate_taylor(model, data, images=16, batch_size=8) == 16
    kinds = {name: type(gate) for name, gate in iter_gates(model)}
    assert kinds["2.block.3"] is GatedLinear and kinds["1"] is GatedLayerNorm
    for name, gate in iter_gates(model):
        assert gate.taylor_score.shape == (gate.num_features,) and float(gate.taylor_score.sum()) > 0, name
    assert model[2].block[3].taylor_score.shape == (64,)


def test_a_gated_convnext_block_prunes_with_its_layer_scale_and_linears():
    model = random_gates(insert_gates(_convnext_like()), seed=4)
    example = torch.zeros(1, 3, 32, 32)
    pruned = prune_model(model, model[6], PruneSettings(keep=0.5, gate_score="value", round_to=4), example)
    block = pruned[2]
    width, hidden = pruned[0].out_channels, block.block[3].out_features
    assert width < 16 and hidden < 64 and not has_gates(pruned)
    assert (pruned[1].weight.shape[0], block.block[0].out_channels, block.block[3].in_features,
            block.block[5].out_features, block.layer_scale.shape[0], pruned[6].in_features) == (width,) * 6
    assert type(block.block[3]) is nn.Linear and block.block[5].in_features == hidden
    assert pruned(torch.randn(2, 3, 32, 32)).shape == (2, 5)
    check_rebuildable(pruned, _convnext_like())  # the layer scale is recorded: a file of it loads back
    rebuilt = _convnext_like()
    apply_structure(rebuilt, describe_structure(pruned))
    rebuilt.load_state_dict(pruned.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(rebuilt(x), pruned(x), rtol=0, atol=0)


def test_the_exact_cut_of_zeroed_conv_gates_changes_nothing():
    model = random_gates(insert_gates(_vgg_like()), seed=5)
    masks = {name: torch.zeros(m.num_features, dtype=torch.bool) for name, m in iter_gates(model)}
    masks["2"][[1, 4, 9]] = True
    with torch.no_grad():
        model[2].gate[masks["2"]] = 0.0
    x = torch.randn(2, 3, 32, 32)
    expected = model(x)
    cut = cut_channels_exactly(model, torch.zeros(1, 3, 32, 32), masks)
    assert cut[2].out_channels == 13 and cut[5].in_channels == 13 and not has_gates(cut)
    assert _relative_change(cut(x), expected) <= 1e-5


def test_a_gated_convnext_tiny_prunes_its_mlp_hidden_channels():
    """(The pipeline test below exports a pruned convnext_tiny with its hidden channels cut, with parity.)"""
    torch.manual_seed(0)
    model = build_on_meta(lambda: build_model("convnext_tiny", num_classes=4, weights="none")).to_empty(device="cpu")
    with torch.no_grad():  # torchvision's truncated-normal init of 28 M weights takes seconds; any weights do here
        for p in model.parameters():
            p.normal_(0, 0.05)
    model = insert_gates(model).eval()
    dense = {n: m.out_features for n, m in model.named_modules() if isinstance(m, GatedLinear)}
    assert len(dense) == 18
    for _, gate in iter_gates(model):
        gate.gate.data.uniform_(0, 1)
    example = torch.zeros(1, 3, 32, 32)
    pruned = prune_model(model, model.classifier[2], PruneSettings(keep=0.6, gate_score="value"), example)
    hidden = {n: pruned.get_submodule(n) for n in dense}
    assert all(type(m) is nn.Linear for m in hidden.values()) and not has_gates(pruned)
    assert all(m.out_features < dense[n] for n, m in hidden.items())  # every block lost hidden channels
    assert all(pruned.get_submodule(n[:-1] + "5").in_features == m.out_features for n, m in hidden.items())
    assert pruned(torch.randn(2, 3, 32, 32)).shape == (2, 4)


@pytest.mark.slow
def test_convnext_tiny_runs_finetune_prune_export_with_parity(tmp_path):
    from fa_compress.export.pipeline import ExportOptions, export_run
    from fa_compress.models.saved import load_run_model
    from fa_compress.pruning.stage import PruneOptions, prune_run
    from fa_compress.train import TrainConfig, parse_schedule
    from fa_compress.train.stage import FinetuneOptions, finetune_run

    train = TrainConfig(schedule=parse_schedule("head,gates"), batch_size=4, seed=0)
    run, _ = finetune_run(FinetuneOptions(model="convnext_tiny", weights="none", data="fake:4", img_size=32,
                                          limit_train=8, limit_test=4, device="cpu", run=tmp_path / "run",
                                          train=train, show_progress=False))
    _, result, _ = prune_run(PruneOptions(settings=PruneSettings(keep=0.6, gate_score="value"), recover_epochs=0,
                                          run=run.path, device="cpu", show_progress=False))
    assert result.params_after < 0.8 * result.params_before
    pruned, _ = load_run_model(run, "pruned")
    dense = build_on_meta(lambda: build_model("convnext_tiny", num_classes=4, weights="none"))
    hidden = {n: m.out_features for n, m in pruned.named_modules() if n.endswith(".block.3")}
    assert len(hidden) == 18 and sum(hidden.values()) < sum(dense.get_submodule(n).out_features for n in hidden)
    exported = export_run(run.path, ExportOptions())
    assert exported.parity.passed and exported.parity.top1_agreement == 1.0


def test_the_ranking_names_stages_by_resolution_for_channels_last_gates_too():
    model = insert_gates(_convnext_like())
    stages = {r.layer: r.stage for r in gate_ranking(model, img_size=32)}
    assert stages == {"1": "stride 4 (8x8)", "2.block.2": "stride 4 (8x8)", "2.block.3": "stride 4 (8x8)",
                      "3": "stride 4 (8x8)"}


def test_a_layernorm_gate_of_zero_computes_the_layernorm_without_that_channel():
    model = insert_gates(_convnext_like())
    ln = model[1]
    with torch.no_grad():
        ln.gate[[2, 7]] = 0.0
    x = torch.randn(2, 16, 4, 4)
    keep = [c for c in range(16) if c not in (2, 7)]
    cut = LayerNorm2d(14, eps=ln.eps)
    with torch.no_grad():
        cut.weight.copy_(ln.weight[keep])
        cut.bias.copy_(ln.bias[keep])
    out = ln(x)
    assert torch.all(out[:, [2, 7]] == 0)
    torch.testing.assert_close(out[:, keep], cut(x[:, keep]))


def test_pruning_a_gated_layernorm_keeps_its_remaining_channels_in_order():
    ln = gate_layernorm(nn.LayerNorm(16), channels_first=False)
    with torch.no_grad():
        ln.weight.copy_(torch.arange(16.0))
        ln.gate.copy_(torch.arange(16.0) + 100)
    cut = [0, 1, 3, 4, 5, 6, 8, 9, 10, 11, 12, 14]  # the set of the 4 left iterates as 2, 15, 13, 7
    GATE_PRUNERS[GatedLayerNorm].prune_out_channels(ln, cut)
    assert ln.weight.tolist() == [2, 7, 13, 15] and ln.bias.shape == (4,) and ln.normalized_shape == (4,)
    assert ln.gate.tolist() == [102, 107, 113, 115]


@pytest.mark.parametrize("importance", ["l1", "taylor"])
def test_torch_pruning_criteria_keep_a_plain_layernorm_in_channel_order(importance):
    model = _convnext_like()
    stem_w, stem_ln = model[0].weight.detach().clone(), model[1].weight.detach().clone()  # (16, 3, 4, 4), (16,)
    if importance == "taylor":
        nn.functional.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 2, 3])).backward()
    prune_model(model, model[6], PruneSettings(importance=importance, keep=0.25, round_to=1, max_layer_prune=0.8),
                torch.zeros(1, 3, 32, 32))
    # which dense channels the stem kept, read from its surviving filters; the LayerNorm after it must hold
    # exactly those channels' scales, in the same order
    kept = [next(i for i in range(16) if torch.equal(stem_w[i], w)) for w in model[0].weight.detach()]
    assert 0 < len(kept) < 16 and kept == sorted(kept)
    assert model[1].weight.detach().tolist() == stem_ln[kept].tolist()


def test_the_exact_cut_of_a_convnext_block_with_its_gates_at_zero_changes_nothing():
    model = random_gates(insert_gates(_convnext_like()), seed=6)
    example = torch.zeros(1, 3, 32, 32)
    masks, _ = plan_cut(model, model[6], PruneSettings(gate_score="value", round_to=4), example, Budget(keep=0.5))
    with torch.no_grad():
        for name, m in iter_gates(model):
            m.gate[masks[name]] = 0.0
    stream = [masks[name] for name in ("1", "2.block.2", "3")]
    assert all(torch.equal(mask, stream[0]) for mask in stream)  # one residual stream: one cut for all
    stream_cut, hidden_cut = int(stream[0].sum()), int(masks["2.block.3"].sum())
    assert 0 < stream_cut < 16 and 0 < hidden_cut < 64  # the MLP's hidden channels are planned on their own gate
    assert stream_cut + hidden_cut == (16 + 64) // 2
    x = torch.randn(2, 3, 32, 32)
    expected = model(x)
    cut = cut_channels_exactly(model, example, masks)
    assert cut[0].out_channels == 16 - stream_cut and cut[2].block[3].out_features == 64 - hidden_cut
    assert _relative_change(cut(x), expected) <= 1e-5
