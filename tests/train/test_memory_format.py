"""Memory format: the chosen layout reaches the weights and the batches on every path, results agree
across layouts, `auto` follows its rule, and old configs still load."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import fa_compress.train.memory_format as mf
from fa_compress.errors import ConfigError
from fa_compress.gates import insert_gates
from fa_compress.train import TrainConfig
from fa_compress.train.distributed import Context
from fa_compress.train.memory_format import MemoryFormatChoice, is_in_format, prepare, resolve_memory_format, to_format
from fa_compress.train.progress import phase_bar
from tests.conftest import randomize_batchnorm

CTX = Context(device=torch.device("cpu"))
FORMATS = ("channels_last", "contiguous")
IMG = 16


class _Images(TensorDataset):
    in_memory = True  # make_loader: no worker processes


class _Tiny(nn.Module):
    """Two conv-BN-ReLU blocks, pooled, and a linear classifier `fc`."""

    def __init__(self, classes: int = 4, depthwise: bool = False) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=8 if depthwise else 1, bias=False), nn.BatchNorm2d(16),
            nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)).flatten(1))  # (N, 16, 1, 1) -> (N, classes)


def _tiny(gated: bool = True, depthwise: bool = False) -> nn.Module:
    torch.manual_seed(0)
    model = randomize_batchnorm(_Tiny(depthwise=depthwise))
    return insert_gates(model) if gated else model


@pytest.fixture
def images() -> _Images:
    g = torch.Generator().manual_seed(0)
    return _Images(torch.randn(48, 3, IMG, IMG, generator=g), torch.randint(0, 4, (48,), generator=g))


@contextmanager
def _layouts(model: nn.Module) -> Iterator[list[tuple[torch.Tensor, torch.Tensor]]]:
    """Record (input, weight) of every conv call; the caller asserts their layout afterwards."""
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    hooks = [m.register_forward_pre_hook(lambda mod, args: seen.append((args[0], mod.weight)))
             for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        yield seen
    finally:
        for h in hooks:
            h.remove()


def _assert_layout(seen: list[tuple[torch.Tensor, torch.Tensor]], fmt: str) -> None:
    assert seen, "no convolution ran"
    for x, w in seen:
        assert is_in_format(x, fmt), f"batch {tuple(x.shape)} strides {x.stride()} not {fmt}"
        assert is_in_format(w, fmt), f"weight {tuple(w.shape)} strides {w.stride()} not {fmt}"


# ---- the rule and its checks ------------------------------------------------------------------------

def test_explicit_formats_are_kept_and_unknown_ones_refused():
    for fmt in FORMATS:
        assert resolve_memory_format(fmt, "cpu") == MemoryFormatChoice(fmt, fmt, "asked for")
    assert resolve_memory_format("auto", "cuda").chosen == "channels_last"
    with pytest.raises(ConfigError, match="memory_format 'nhwc'.*auto, channels_last, contiguous"):
        resolve_memory_format("nhwc", "cpu")
    with pytest.raises(ConfigError, match="memory_format"):
        TrainConfig(memory_format="NHWC")


@pytest.mark.parametrize("machine, flags, mkldnn, depthwise, chosen", [
    ("x86_64", {"avx2", "avx512f", "avx512_vnni", "amx_tile"}, True, True, "channels_last"),  # the Xeon here
    ("x86_64", {"avx2", "fma"}, True, True, "channels_last"),                                 # AVX2-only EPYC
    ("x86_64", {"avx2", "avx512f"}, True, False, "contiguous"),  # dense ResNets measured slower
    ("x86_64", {"sse4_2"}, True, True, "contiguous"),
    ("aarch64", set(), True, True, "contiguous"),
    ("x86_64", {"avx2"}, False, True, "contiguous"),
])
def test_auto_on_the_cpu_follows_the_rule(monkeypatch, machine, flags, mkldnn, depthwise, chosen):
    monkeypatch.setattr(mf.platform, "machine", lambda: machine)
    monkeypatch.setattr(mf, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.setattr(mf.torch.backends.mkldnn, "is_available", lambda: mkldnn)
    mf.cpu_rule.cache_clear()
    try:
        choice = resolve_memory_format("auto", "cpu", _tiny(depthwise=depthwise))
        described = mf.describe_auto_cpu()
    finally:
        mf.cpu_rule.cache_clear()
    assert (choice.asked, choice.chosen) == ("auto", chosen)
    assert choice.reason and described.startswith("auto: ")


def test_auto_needs_the_model_on_the_cpu_and_batches_need_a_resolved_format():
    from fa_compress.errors import InternalError

    with pytest.raises(InternalError, match="needs the model"):
        resolve_memory_format("auto", "cpu")
    with pytest.raises(InternalError, match="resolved first"):
        to_format(torch.ones(1, 3, 4, 4), "auto")


def test_old_configs_load():
    d = TrainConfig().to_dict()
    d.pop("memory_format")
    assert TrainConfig.from_dict(d).memory_format == "auto"
    assert TrainConfig.from_dict({**d, "channels_last": True}).memory_format == "auto"
    assert TrainConfig.from_dict({**d, "channels_last": False}).memory_format == "contiguous"
    assert TrainConfig.from_dict(TrainConfig(memory_format="contiguous").to_dict()).memory_format == "contiguous"


def test_to_format_leaves_other_tensors_and_prepare_keeps_parameters():
    assert to_format(torch.ones(2, 3), "channels_last").is_contiguous()
    model = _tiny()
    params = list(model.parameters())
    assert prepare(model, "channels_last").chosen == "channels_last"
    assert [id(p) for p in model.parameters()] == [id(p) for p in params]
    assert is_in_format(model.features[0].weight, "channels_last")
    with torch.inference_mode():
        prepare(model, "contiguous")  # evaluate() prepares inside inference mode
    assert not model.features[0].weight.is_inference()


# ---- every path gets the format ---------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("phase", ["gates", "bn", "all"])
def test_image_phases_train_in_the_format(images, phase, fmt):
    from fa_compress.train.loop import run_image_phase

    model = _tiny()
    with phase_bar(False) as bar, _layouts(model) as seen:
        loss, acc, rate = run_image_phase(model, model.fc, phase, 0, images,
                                          TrainConfig(batch_size=16, memory_format=fmt), CTX, bar)
    _assert_layout(seen, fmt)
    assert len(seen) == 2 * 3 and loss > 0 and 0 <= acc <= 1 and rate > 0  # 2 convs x 3 batches


@pytest.mark.parametrize("fmt", FORMATS)
def test_head_feature_caching_runs_the_backbone_in_the_format(images, fmt):
    from fa_compress.train.features import train_head_on_features

    model = _tiny()
    cache: dict = {}
    with phase_bar(False) as bar, _layouts(model) as seen:
        train_head_on_features(model, model.fc, images, TrainConfig(batch_size=16, memory_format=fmt), CTX, bar,
                               0, cache)
    _assert_layout(seen, fmt)
    assert cache["features"][0].shape == (48, 16)


@pytest.mark.parametrize("fmt", FORMATS)
def test_evaluation_runs_in_the_format(images, fmt):
    from fa_compress.data import make_loader
    from fa_compress.train.loop import evaluate, run_image_phase

    model = _tiny()
    loader = make_loader(images, 16, shuffle=False)
    with _layouts(model) as seen:
        acc = evaluate(model, loader, CTX, TrainConfig(memory_format=fmt))
    _assert_layout(seen, fmt)
    assert 0 <= acc <= 1
    with phase_bar(False) as bar:  # the weights evaluate() converted still train
        run_image_phase(model, model.fc, "all", 0, images, TrainConfig(batch_size=16), CTX, bar)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("phase", ["all", "gates"])
def test_recovery_runs_in_the_format(images, phase, fmt):
    from fa_compress.pruning.recover import recover

    model = _tiny(gated=False)
    with phase_bar(False) as bar, _layouts(model) as seen:
        result = recover(model, model.fc, images, None, 1, TrainConfig(batch_size=16, memory_format=fmt), CTX, bar,
                         phase=phase)
    _assert_layout(seen, fmt)
    assert [p.phase for p in result.phases] == [phase]


@pytest.mark.parametrize("fmt", FORMATS)
def test_taylor_scoring_runs_in_the_format(images, fmt):
    from fa_compress.pruning.pruner import taylor_gradients

    model = _tiny(gated=False)
    with _layouts(model) as seen:
        taylor_gradients(images, "cpu", images=32, batch_size=16, memory_format=fmt)(model)
    _assert_layout(seen, fmt)
    assert model.features[0].weight.grad is not None and model.features[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_torch_cpu_backend_runs_in_the_format(fmt):
    from fa_compress.bench.backends.torch_eager import TorchCpuBackend

    model = _tiny(gated=False).eval()
    runner = TorchCpuBackend(memory_format=fmt).load(model)
    assert fmt in runner.settings
    with _layouts(runner.model) as seen:
        runner.step_fn(2, IMG)()
        logits = runner.predict(torch.randn(3, 3, IMG, IMG))
    _assert_layout(seen, fmt)
    assert logits.shape == (3, 4)
    assert model.features[0].weight.is_contiguous()  # the caller's model is untouched


@pytest.mark.parametrize("depthwise", [True, False])
def test_auto_reaches_evaluation_and_the_torch_cpu_backend(images, depthwise):
    """`auto`, as the CLI defaults: the layout the rule picks for this model on this machine."""
    from fa_compress.bench.backends import get_backend
    from fa_compress.data import make_loader
    from fa_compress.train.loop import evaluate

    model = _tiny(depthwise=depthwise)
    expected = resolve_memory_format("auto", "cpu", model).chosen
    with _layouts(model) as seen:
        evaluate(model, make_loader(images, 16, shuffle=False), CTX, TrainConfig())
    _assert_layout(seen, expected)
    backend = get_backend("torch-cpu")
    assert backend.memory_format == "auto"
    runner = backend.load(model)
    assert expected in runner.settings
    with _layouts(runner.model) as seen:
        runner.step_fn(1, IMG)()
    _assert_layout(seen, expected)


# ---- results agree ----------------------------------------------------------------------------------

def test_training_agrees_across_formats(images):
    """Two phases (`all`, `gates`; 6 AdamW steps) from the same seed: losses, accuracies and weights agree
    to float rounding (measured: max weight difference 1.2e-7, loss 3e-8 relative; tolerance 1e-5)."""
    from fa_compress.data import make_loader
    from fa_compress.train.loop import finetune

    outcomes = []
    for fmt in FORMATS:
        model = _tiny()
        cfg = TrainConfig(schedule=("all", "gates"), batch_size=16, memory_format=fmt)
        with phase_bar(False) as bar:
            result = finetune(model, model.fc, images, make_loader(images, 16, shuffle=False), cfg, CTX, bar)
        outcomes.append((result, {k: v.contiguous() for k, v in model.state_dict().items()}))
    (a, wa), (b, wb) = outcomes
    for pa, pb in zip(a.phases, b.phases):
        assert pa.train_loss == pytest.approx(pb.train_loss, rel=1e-5)
        assert (pa.train_acc, pa.test_acc) == (pb.train_acc, pb.test_acc)
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-5, atol=1e-5, msg=k)


@pytest.mark.parametrize("depthwise", [True, False])
def test_inference_agrees_across_formats(depthwise):
    model = _tiny(depthwise=depthwise).eval()
    x = torch.randn(4, 3, IMG, IMG)
    other = copy.deepcopy(model)
    with torch.no_grad():
        ref = model(x)
        got = other(to_format(x, prepare(other, "channels_last")))
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)


# ---- the run and the bench environment record the choice --------------------------------------------

def test_bench_environment_records_the_choice():
    from fa_compress.bench.environment import environment

    env = environment()
    assert env.memory_format == mf.describe_auto_cpu()
    assert env.memory_format.startswith("auto: ")


def test_finetune_and_prune_record_the_choice(tmp_path):
    from fa_compress.pruning.pruner import PruneSettings
    from fa_compress.pruning.stage import PruneOptions, prune_run
    from fa_compress.train.stage import FinetuneOptions, finetune_run

    run, _ = finetune_run(FinetuneOptions(
        model="resnet18", weights="none", data="fake", img_size=32, limit_train=32, limit_test=32,
        run=tmp_path / "r", show_progress=False,
        train=TrainConfig(schedule=("bn",), batch_size=16, memory_format="contiguous")))
    stage = run.stage("finetune")
    assert stage["memory_format"] == {"asked": "contiguous", "chosen": "contiguous", "reason": "asked for"}
    assert stage["options"]["train"]["memory_format"] == "contiguous"
    prune_run(PruneOptions(settings=PruneSettings(keep=0.75, importance="l1"), recover_epochs=0, run=run.path,
                           show_progress=False))
    recorded = run.stage("prune")["memory_format"]
    assert recorded["asked"] == "auto" and recorded["chosen"] == "contiguous"  # resnet18: no depthwise convs
