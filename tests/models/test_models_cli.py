"""`facompress models`: every name with its status, ImageNet weights, resolution and normalisation."""

import json

import pytest

from fa_compress.cli.app import main


def _models(capsys, *args: str) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["models", *args])
    assert info.value.code == 0
    return capsys.readouterr().out


def test_table_lists_supported_refused_and_offline_models(capsys):
    lines = {line.split()[0]: line for line in _models(capsys).splitlines() if line and not line.startswith(" ")}
    assert "ok" in lines["efficientnet_lite0"] and "offline: package" in lines["efficientnet_lite0"]
    assert "0.5,0.5,0.5" in lines["efficientnet_lite0"]
    assert "refused" in lines["vit_b_16"] and "ok" in lines["shufflenet_v2_x1_0"] and "ok" in lines["alexnet"]
    assert " 299 " in lines["inception_v3"] and "  75 " in lines["inception_v3"]
    assert "ok" in lines["regnet_x_400mf"]


def test_json_supported_only(capsys):
    rows = json.loads(_models(capsys, "--json", "--supported-only"))
    names = {r["name"] for r in rows}
    assert {"resnet18", "densenet121", "efficientnet_lite0", "convnext_tiny"} <= names and "vit_b_16" not in names
    assert all(r["supported"] for r in rows)
    lite = next(r for r in rows if r["name"] == "efficientnet_lite0")
    assert lite["imagenet_offline"] is True and lite["normalization"] == {"mean": [0.5] * 3, "std": [0.5] * 3}
