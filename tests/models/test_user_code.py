"""`--model file.py:factory`: only with --trust-code, recorded, required again by every later command."""

import json
from pathlib import Path

import pytest
import torch

from fa_compress.cli.app import main
from fa_compress.errors import CheckpointError, ConfigError, NotFoundError
from fa_compress.gates import insert_gates, iter_gates
from fa_compress.models import build_model, get_head, get_spec, trust_code
from fa_compress.pruning.pruner import PruneSettings, prune_model
from fa_compress.models.saved import load_model, model_meta, save_model

NETS = Path(__file__).with_name("user_nets.py").resolve()
NORM_ZOO = f"{NETS}:norm_zoo"
TINY = ["--weights", "none", "--data", "fake:4", "--img-size", "32", "--limit-train", "32", "--limit-test", "16",
        "--schedule", "head,gates", "--batch-size", "16", "--quiet"]


def _cli(argv: list[str], capsys) -> tuple[int, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code, capsys.readouterr().err


def test_user_code_is_refused_without_trust():
    with pytest.raises(ConfigError, match="trust_code"):
        get_spec(NORM_ZOO)
    with pytest.raises(ConfigError, match="trust_code"):
        build_model(NORM_ZOO, num_classes=3)


def test_trusted_factory_builds_with_its_head_found_and_replaced():
    with trust_code():
        spec = get_spec(NORM_ZOO)
        model = build_model(NORM_ZOO, num_classes=3, weights="none").eval()
    assert (spec.head, spec.source) == ("fc", "user")
    assert model.fc.out_features == 3
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 3)  # (B, 3, H, W) -> (B, classes)


@pytest.mark.parametrize("factory", ["ends_in_1x1_conv", "no_batchnorm"])
def test_a_1x1_conv_classifier_and_a_norm_free_net_are_taken(factory):
    name = f"{NETS}:{factory}"
    with trust_code():
        model = build_model(name, num_classes=3, weights="none").eval()
        head = get_head(model, name)
    assert getattr(head, "out_channels", getattr(head, "out_features", None)) == 3
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 3)
    gated = insert_gates(model)
    assert head not in [m for _, m in iter_gates(gated)] and len(list(iter_gates(gated))) == 1


@pytest.mark.parametrize("name, error, words", [
    (f"{NETS}:not_a_module", ConfigError, "not a torch.nn.Module"),
    (f"{NETS}:no_gate_site", ConfigError, "BatchNorm2d, a LayerNorm over channels"),
    (f"{NETS}:ends_in_conv", ConfigError, "nn.Linear layer or a 1x1 conv"),
    (f"{NETS}:nope", NotFoundError, "norm_zoo"),
    ("missing_file.py:net", NotFoundError, "does not exist"),
    ("no_such_package.nets:net", NotFoundError, "cannot import"),
])
def test_bad_factories_are_one_clear_error(name, error, words):
    with trust_code(), pytest.raises(error, match=words):
        get_spec(name)


def _pruned(factory: str, importance: str = "gate") -> torch.nn.Module:
    torch.manual_seed(0)
    model = insert_gates(build_model(factory, num_classes=4, weights="none")).eval()
    for _, gated in iter_gates(model):
        gated.gate.data.uniform_(0, 1)
    return prune_model(model, get_head(model, factory), PruneSettings(keep=0.5, importance=importance, gate_score="value",
                                                                            round_to=1),
                       torch.zeros(1, 3, 32, 32))


def test_groupnorm_prelu_layernorm_are_rebuilt_from_the_structure_record(tmp_path):
    with trust_code():
        pruned = _pruned(NORM_ZOO, importance="l1")  # the GroupNorm'd conv has no gate: l1 ranks it
        assert pruned.mid[1].num_channels < 32 and pruned.norm.normalized_shape[0] < 32  # all were pruned
        path = tmp_path / "pruned.safetensors"
        save_model(path, pruned, model_meta(pruned, arch=NORM_ZOO, classes=list("abcd"), img_size=32,
                                            normalization={"mean": [0.5] * 3, "std": [0.5] * 3}))
        rebuilt, _ = load_model(path)
    images = torch.randn(2, 3, 32, 32)  # (B, 3, H, W)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(images), pruned(images), rtol=0, atol=0)
    assert rebuilt.mid[2].num_parameters == pruned.mid[2].weight.numel()
    with pytest.raises(CheckpointError, match="trust_code"):
        load_model(path)  # the file alone never imports the code


def test_pruning_a_layer_the_record_cannot_rebuild_is_refused_before_writing(tmp_path):
    name = f"{NETS}:with_scale"
    with trust_code():
        pruned = _pruned(name)
        with pytest.raises(ConfigError, match=r"body\.3\.scale \(Scale\).*ignore"):
            model_meta(pruned, arch=name, classes=list("abcd"), img_size=32,
                       normalization={"mean": [0.5] * 3, "std": [0.5] * 3})
    assert not list(tmp_path.iterdir())


def test_cli_needs_trust_code_for_user_code_and_records_it(tmp_path, capsys):
    run = tmp_path / "run"
    code, err = _cli(["finetune", "--model", NORM_ZOO, *TINY, "--run", str(run)], capsys)
    assert code == 2 and err.startswith("error:") and "--trust-code" in err and len(err.strip().splitlines()) == 1
    assert not run.exists()

    code, _ = _cli(["finetune", "--model", NORM_ZOO, *TINY, "--run", str(run), "--trust-code"], capsys)
    assert code == 0
    options = json.loads((run / "run.json").read_text())["stages"]["finetune"]["options"]
    assert options["trust_code"] is True and options["model"] == NORM_ZOO

    before = sorted(p.name for p in run.iterdir())
    for command in (["prune", "--recover-epochs", "0", "--quiet"], ["export"], ["bench", "--quiet"]):
        code, err = _cli([*command, "--run", str(run)], capsys)
        assert code == 2 and "--trust-code" in err and len(err.strip().splitlines()) == 1, (command, err)
    assert sorted(p.name for p in run.iterdir()) == before  # nothing written

    code, err = _cli(["prune", "--run", str(run), "--recover-epochs", "0", "--keep", "0.5", "--quiet",
                      "--trust-code"], capsys)
    assert code == 0, err
    assert (run / "pruned.safetensors").is_file()
