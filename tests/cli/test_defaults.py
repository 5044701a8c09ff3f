"""Each default lives in one place: the CLI and the Python API read the same settings dataclasses."""

import dataclasses
import inspect

import pytest

from fa_compress import api
from fa_compress.cli import prune as cli_prune
from fa_compress.cli._common import as_flags
from fa_compress.pruning.chain import ChainOptions
from fa_compress.pruning.pruner import PruneSettings

# options whose defaults differ on purpose, with the reason
DIFFERENT = {
    "seed": "the command's default is the run's own fine-tuning seed; the API has no run",
}


def _defaults(fn) -> dict:
    return {name: p.default for name, p in inspect.signature(fn).parameters.items()
            if p.default is not inspect.Parameter.empty}


def test_prune_api_and_cli_share_every_default():
    cli, lib = _defaults(cli_prune.prune), _defaults(api.prune)
    shared = sorted((set(cli) & set(lib)) - set(DIFFERENT))
    assert len(shared) >= 15  # the budget, ranking and training options at least
    mismatched = {name: (cli[name], lib[name]) for name in shared
                  if cli[name] != lib[name] and not (cli[name] is None and lib[name] == ())}
    assert mismatched == {}


def test_the_shared_defaults_are_the_settings_dataclasses():
    fields = {f.name: f.default for cls in (PruneSettings, ChainOptions) for f in dataclasses.fields(cls)
              if f.default is not dataclasses.MISSING}
    lib = _defaults(api.prune)
    checked = [name for name in lib if name in fields]
    assert len(checked) >= 12
    assert {name: lib[name] for name in checked if lib[name] != fields[name]} == {"keep": None}  # None: no budget given


@pytest.mark.parametrize("message, expected", [
    ("recover_lr must be in (0, 10) (got 0.0)", "--recover-lr must be in (0, 10) (got 0.0)"),
    ("keep 0.05 leaves a layer with no channel; raise keep", "--keep 0.05 leaves a layer with no channel; raise --keep"),
    ("fade_epochs fades ... importance gate", "--fade-epochs fades ... --importance gate"),
    ("the model has no gates", "the model has no gates"),
    ("ImageNet weights for resnet34 are not cached; pass weights PATH, or weights none",
     "ImageNet weights for resnet34 are not cached; pass --weights PATH, or --weights none"),
    ("give one budget, not `keep` and `target_macs`", "give one budget, not --keep and --target-macs"),
])
def test_the_cli_names_flags_where_the_library_names_parameters(message, expected):
    assert as_flags(message, ["recover_lr", "keep", "fade_epochs", "importance", "weights", "target_macs"]) == expected
