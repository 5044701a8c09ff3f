"""`facompress prune` as typed: with the gate ranking its one epoch after fine-tuning fades the cut
out and no recovery follows; with another ranking the cut is recovered; both are recorded."""

import json

from tests.cli.cli_output import cli_output


def test_the_default_epoch_fades_with_the_gate_ranking_and_recovers_with_another(tmp_path, capsys):
    run = tmp_path / "run"
    cli_output(["finetune", "--model", "resnet18", "--weights", "none", "--data", "fake", "--img-size", "32",
          "--limit-train", "64", "--limit-test", "32", "--schedule", "head,gates", "--run", str(run), "--quiet"],
         capsys)
    out = cli_output(["prune", "--run", str(run), "--keep", "0.75", "--score-images", "32", "--quiet"], capsys)
    assert "faded out before the cut:" in out and "no recovery ran" in out
    stage = json.loads((run / "run.json").read_text())["stages"]["prune"]
    assert (stage["fade_epochs"], stage["recover_epochs"], stage["recover_batch_size"]) == (1, 0, 8)
    assert stage["metrics"]["fade"]["channels"] > 0 and stage["metrics"]["kept"] == "pruned"

    out = cli_output(["prune", "--run", str(run), "--keep", "0.75", "--importance", "l1", "--quiet"], capsys)
    assert "faded out" not in out and "saved:" in out
    stage = json.loads((run / "run.json").read_text())["stages"]["prune"]
    assert (stage["fade_epochs"], stage["recover_epochs"]) == (0, 1)
    assert stage["metrics"]["acc_recovered"] is not None
