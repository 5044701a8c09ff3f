"""Recipes: the TOML writer, loading with every default filled in, and one-line errors naming the file and key,
all before any stage runs."""

import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fa_compress.errors import ConfigError, NotFoundError
from fa_compress.recipe import SECTIONS, load_recipe, parse_setting
from fa_compress.recipe._toml import dumps
from fa_compress.recipe.sections import export_calls
from fa_compress.train.config import TrainConfig
from fa_compress.train.stage import FinetuneOptions

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "recipe.toml"

_scalars = st.one_of(st.text(), st.integers(-2**63, 2**63 - 1), st.booleans(),
                     st.floats(allow_nan=False), st.lists(st.integers(-1000, 1000), max_size=4),
                     st.lists(st.text(max_size=8), max_size=4))
_names = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_names, st.dictionaries(_names, st.one_of(st.none(), _scalars), max_size=6), max_size=4))
def test_the_writer_reads_back_through_tomllib(tables):
    read = tomllib.loads(dumps(tables, header=["a comment", ""]))
    assert read == {name: {k: v for k, v in values.items() if v is not None} for name, values in tables.items()}


def test_a_recipe_lists_every_key_of_every_stage_and_replays_to_itself(tmp_path):
    recipe = load_recipe()
    assert list(recipe.values) == ["finetune", "prune", "export", "bench", "report"]
    assert all(set(recipe.values[s.name]) == {k.name for k in s.keys} for s in SECTIONS.values())
    ft = recipe.values["finetune"]
    assert ft["model"] == FinetuneOptions.model and ft["schedule"] == ",".join(TrainConfig.schedule)
    assert (ft["img_size"], ft["limit_train"], ft["limit_test"]) == (64, None, None)  # Fashion-MNIST's size
    text = recipe.to_toml()
    assert "img_size = 64  # fashion-mnist declares 64 px for its 28-px images" in text
    assert "# limit_train: not set (every training image)" in text
    path = tmp_path / "replay.toml"
    path.write_text(text)
    assert load_recipe(path).values == recipe.values


def test_the_shipped_example_is_the_demo(tmp_path):
    recipe = load_recipe(EXAMPLE)
    ft = recipe.values["finetune"]
    assert (ft["model"], ft["data"], ft["img_size"], ft["limit_train"], ft["limit_test"]) == \
        ("efficientnet_lite0", "fashion-mnist", 64, 6000, 2000)
    assert recipe.values["prune"]["target_macs"] == 0.5 and recipe.values["export"]["int8"] is True


def test_without_a_size_the_model_and_the_data_choose_it():
    recipe = load_recipe(None, {"finetune": {"model": "efficientnet_lite1", "data": "fake"}})
    assert recipe.values["finetune"]["img_size"] == 240
    assert recipe.img_size_choice.reason == "efficientnet_lite1's pretrained resolution"


def test_command_line_values_override_the_file_and_numbers_are_normalised(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text('[prune]\nkeep = 0.5\ngate_per_mac = 1\n[finetune]\nmodel = "resnet18"\n')
    recipe = load_recipe(path, {"finetune": {"model": "mobilenet_v2"}})
    assert recipe.values["finetune"]["model"] == "mobilenet_v2"
    assert recipe.values["prune"]["gate_per_mac"] == 1.0 and isinstance(recipe.values["prune"]["gate_per_mac"], float)


@pytest.mark.parametrize("body, names", [
    ("[finetun]\nmodel = 'resnet18'\n", ["unknown section [finetun]", "[finetune]"]),
    ("model = 'resnet18'\n", ["key 'model' outside a section"]),
    ("[finetune]\nimg-size = 32\n", ["unknown key 'img-size' in [finetune]", "keys use underscores: img_size"]),
    ("[report]\nrun = 'x'\n", ["unknown key 'run' in [report]"]),
    ("[finetune]\nimg_size = '32'\n", ["[finetune] img_size must be a whole number", '(got "32")']),
    ("[export]\nint8 = 1\n", ["[export] int8 must be true or false"]),
    ("[bench]\nbackend = 'ort-cpu'\n", ["[bench] backend must be a list of strings"]),
    ("[finetune]\nimg_size = 5\n", ["[finetune] img_size = 5 is refused", "[16, 1024]"]),
    ("[prune]\ntarget_macs = 1.5\n", ["[prune] target_macs = 1.5 is refused", "(0, 1)"]),
    ("[prune]\nrecover_lr = 0.0\n", ["[prune] recover_lr = 0.0 is refused", "(0, 10)"]),
    ("[finetune]\nschedule = 'head,gatez'\n", ["[finetune] schedule = \"head,gatez\" is refused", "gatez"]),
    ("[bench]\nrounds = 0\n", ["[bench] rounds = 0 is refused"]),
    ("[prune]\nkeep = 0.5\ntarget_macs = 0.5\n", ["[prune] keep, target_macs together are refused", "one budget"]),
    ("[finetune]\nmodel = 'inception_v3'\nimg_size = 32\n", ["together are refused", "at least 75 px"]),
    ("[finetune\n", ["is not valid TOML"]),
])
def test_bad_recipes_are_one_line_naming_the_file_and_the_key(tmp_path, body, names):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(ConfigError) as info:
        load_recipe(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message
    assert all(name in message for name in names), message


def test_a_missing_recipe_and_bad_settings_are_refused(tmp_path):
    with pytest.raises(NotFoundError, match="nope.toml does not exist"):
        load_recipe(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match=r"^command line: \[finetune\] img_size = 5 is refused"):
        load_recipe(None, {"finetune": {"img_size": 5}})
    with pytest.raises(ConfigError, match="SECTION.KEY=VALUE"):
        parse_setting("img_size=5")


@pytest.mark.parametrize("text, expected", [
    ("prune.target_macs=0.5", ("prune", "target_macs", 0.5)),
    ("finetune.model=resnet18", ("finetune", "model", "resnet18")),
    ("prune.keep=auto", ("prune", "keep", "auto")),
    ('bench.backend=["ort-cpu", "torch-cpu"]', ("bench", "backend", ["ort-cpu", "torch-cpu"])),
    ("export.int8=true", ("export", "int8", True)),
])
def test_a_setting_takes_toml_values_or_plain_text(text, expected):
    assert parse_setting(text) == expected


def test_the_export_stage_also_exports_the_dense_baseline_unless_told_not_to():
    export = load_recipe().section("export")
    assert [o.model_name for o in export_calls(export)] == ["finetuned", None]  # then the newest: pruned
    assert [o.model_name for o in export_calls({**export, "baseline": False})] == [None]
    assert [o.model_name for o in export_calls({**export, "model": "finetuned"})] == ["finetuned"]
    assert not export_calls({**export, "int8": True})[0].int8  # the baseline stays a plain FP32 ONNX
